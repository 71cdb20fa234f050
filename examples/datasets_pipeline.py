"""A `datasets` preprocessing pipeline with an extended tokenizer: tokenize and pack for training.

    python examples/datasets_pipeline.py --extended runs/medical-quickstart/extended

Reads the project's medical notes into a `datasets.Dataset`, tokenizes them with the extended tokenizer
(loaded with plain transformers: the folder needs nothing of vocabx) and packs them into fixed-size
blocks with `vocabx.pack_dataset` (EOS between documents, no padding), with `num_proc` workers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import datasets
from transformers import AutoTokenizer

import vocabx

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extended", required=True, help="folder written by vocabx extend")
    parser.add_argument("--corpus", default=str(ROOT / "corpora" / "medical" / "clinical_notes.jsonl"), help="a .jsonl file, or a glob of them")
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--num-proc", type=int, default=2)
    args = parser.parse_args(argv)

    tokenizer = AutoTokenizer.from_pretrained(args.extended)
    dataset = datasets.load_dataset("json", data_files=args.corpus, split="train")
    packed = vocabx.pack_dataset(dataset, tokenizer, block_size=args.block_size, num_proc=args.num_proc)
    manifest = json.loads((Path(args.extended) / "vocabx.json").read_text())
    new_ids = {a["id"] for a in manifest["added"]}
    tokens = [i for row in packed["input_ids"] for i in row]
    summary = {
        "documents": len(dataset),
        "blocks": len(packed),
        "block_size": args.block_size,
        # (a block size longer than the whole corpus packs no block)
        "new_token_share": round(sum(i in new_ids for i in tokens) / len(tokens), 4) if tokens else 0.0,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
