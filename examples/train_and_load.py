"""Extend a model for the sample medical corpus, train LoRA plus the new rows, and load the result three ways.

    python examples/train_and_load.py          # smollm2-135m: about 10 minutes on a laptop CPU (20 steps)

1. `vocabx.load_adapted(base, adapter)`: rebuilds the extended model from the base and loads the adapter.
2. Plain transformers + PEFT, no vocabx: load the extended folder (already resized and initialized),
   then the adapter on top.
3. The merged model (`merge=True` in training, or `--merge`): a standard transformers model folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

import vocabx

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--corpus", default=str(ROOT / "corpora" / "medical"))
    parser.add_argument("--out", default="runs")
    parser.add_argument("--top", type=int, default=300)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--block-size", type=int, default=256)
    args = parser.parse_args(argv)
    ext_dir, adapter_dir = Path(args.out) / "ext", Path(args.out) / "adapter"

    texts = list(vocabx.read_corpus(args.corpus))
    tok = vocabx.load_tokenizer(args.model)
    report = vocabx.analyze(texts, tok).report
    ext = vocabx.extend(args.model, vocabx.tokens_from_report(report, args.top), tokenizer=tok, check_texts=texts, pad_to_multiple_of=64)
    vocabx.save_extension(ext, ext_dir, overwrite=True)

    result = vocabx.train(str(ext_dir), texts, adapter_dir, max_steps=args.steps, block_size=args.block_size, batch_size=4, merge=True, overwrite=True)
    print(f"eval bits per byte {result.eval_bpb:.4f}; adapter weights {result.adapter_bytes / 1e6:.2f} MB")

    ids = AutoTokenizer.from_pretrained(adapter_dir)("Hepatosplenomegaly was noted.", return_tensors="pt").input_ids
    with torch.no_grad():
        trained = result.model(input_ids=ids).logits
        # 1. vocabx, from the base model (or from the extended folder)
        rebuilt = vocabx.load_adapted(args.model, adapter_dir)(input_ids=ids).logits
        # 2. plain transformers + PEFT: the extended folder is the base the adapter was trained on
        plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(ext_dir), adapter_dir).eval()(input_ids=ids).logits
        # 3. the merged standard model
        merged = AutoModelForCausalLM.from_pretrained(adapter_dir / "merged")(input_ids=ids).logits
    differences = {}
    for name, logits in (("load_adapted", rebuilt), ("plain PEFT", plain), ("merged", merged)):
        differences[name] = (logits - trained).abs().max().item()
        print(f"{name:12} max |logit difference| {differences[name]:.2e}")
    return differences


if __name__ == "__main__":
    main()
