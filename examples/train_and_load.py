"""Extend SmolLM2 for the sample medical corpus, train LoRA plus the new rows, and load the result three ways.

    python examples/train_and_load.py          # about 10 minutes on a laptop CPU (20 steps)

1. `vocabx.load_adapted(base, adapter)`: rebuilds the extended model from the base and loads the adapter.
2. Plain transformers + PEFT, no vocabx: load the extended folder (already resized and initialized),
   then the adapter on top.
3. The merged model (`merge=True` in training, or `--merge`): a standard transformers model folder.
"""

from __future__ import annotations

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

import vocabx

texts = list(vocabx.read_corpus("corpora/medical"))
tok = vocabx.load_tokenizer("smollm2-135m")
report = vocabx.analyze(texts, tok).report
ext = vocabx.extend("smollm2-135m", vocabx.tokens_from_report(report, 300), tokenizer=tok, check_texts=texts, pad_to_multiple_of=64)
vocabx.save_extension(ext, "runs/ext", overwrite=True)

result = vocabx.train("runs/ext", texts, "runs/adapter", max_steps=20, block_size=256, batch_size=4, merge=True, overwrite=True)
print(f"eval bits per byte {result.eval_bpb:.4f}; adapter weights {result.adapter_bytes / 1e6:.2f} MB")

ids = AutoTokenizer.from_pretrained("runs/adapter")("Hepatosplenomegaly was noted.", return_tensors="pt").input_ids
with torch.no_grad():
    trained = result.model(input_ids=ids).logits
    # 1. vocabx, from the base model (or from "runs/ext")
    rebuilt = vocabx.load_adapted("smollm2-135m", "runs/adapter")(input_ids=ids).logits
    # 2. plain transformers + PEFT: the extended folder is the base the adapter was trained on
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("runs/ext"), "runs/adapter").eval()(input_ids=ids).logits
    # 3. the merged standard model
    merged = AutoModelForCausalLM.from_pretrained("runs/adapter/merged")(input_ids=ids).logits
for name, logits in (("load_adapted", rebuilt), ("plain PEFT", plain), ("merged", merged)):
    print(f"{name:12} max |logit difference| {(logits - trained).abs().max().item():.2e}")
