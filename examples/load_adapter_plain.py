"""Load a vocabx adapter with plain transformers and PEFT, without vocabx.

    python examples/load_adapter_plain.py --base ~/.cache/vocabx/models/smollm2-135m --adapter runs/demo/adapter

An adapter folder holds the LoRA weights, the new embedding rows (PEFT trainable tokens), the extended
tokenizer and `vocabx.json`. Loading it takes three steps: the base model, resized to the extended
tokenizer (the new rows are then overwritten by the adapter's trained rows), then the adapter.
Nothing here imports vocabx.
"""

from __future__ import annotations

import argparse

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the base model folder or hub id the extension was made from")
    parser.add_argument("--adapter", required=True, help="folder written by vocabx train")
    parser.add_argument("--prompt", default="The patient was admitted with")
    args = parser.parse_args(argv)

    tokenizer = AutoTokenizer.from_pretrained(args.adapter)
    model = AutoModelForCausalLM.from_pretrained(args.base)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model = PeftModel.from_pretrained(model, args.adapter)
    model.eval()
    ids = tokenizer(args.prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=20, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    text = tokenizer.decode(out[0], skip_special_tokens=True)
    print(text)
    return text


if __name__ == "__main__":
    main()
