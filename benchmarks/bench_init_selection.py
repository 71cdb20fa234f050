"""Which added tokens cost bits right after `extend`? The same N, chosen in different ways.

smollm2-135m extended by N tokens for MedQuAD train (../shared/corpora) with the default `mean_shift`
rows, no training. Each variant picks the N tokens differently:

- `all`: the analyzer's top N (words, subwords and phrases; the default);
- `no-phrases`: the analyzer's top N words and subwords only;
- `reference`: the top N ranked with the general text as `--reference` (domain specificity), the
  general documents that are not in the scored sample;
- `cohesion-T`: the top 2N with every phrase dropped whose last word follows its other words in less
  than a fraction T of their occurrences in train (so ' signs and symptoms' stays, ' and in' goes),
  then the first N.

For each: the real reduction of MedQuAD test.jsonl's tokens and of the general sample's, and bits per
byte on the same 16 + 16 documents as `bench_init.py` (1,200 characters each), against the base.

    python benchmarks/bench_init_selection.py [--n 8192] [--variants all,no-phrases,reference,cohesion-0.1,cohesion-0.3]
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import sys
import time
from pathlib import Path

from bench_init import DOMAINS, GENERAL, ROOT, SHARED, bpb, sample, top_tokens
from common import documents_after, write_results


def choose(variant: str, train: list[str], tokenizer, n: int, reference: list[str], counts) -> list:
    if variant == "all":
        return top_tokens(train, tokenizer, n)
    if variant == "no-phrases":
        return top_tokens(train, tokenizer, n, kinds=("word", "subword"))
    if variant == "reference":
        return top_tokens(train, tokenizer, n, reference=reference)
    if variant.startswith("cohesion-"):
        tau = float(variant.split("-", 1)[1])
        marker = "Ġ"

        def cohesive(tok) -> bool:
            if tok.kind != "phrase" or not tok.surface.startswith(" "):
                return True
            parts = tuple(marker + w for w in tok.surface[1:].split(" "))
            head = counts.phrases.get(parts[:-1], 0) if len(parts) > 2 else counts.words.get(parts[0], 0)
            return counts.phrases.get(parts, 0) >= tau * max(head, 1)

        return [t for t in top_tokens(train, tokenizer, 2 * n) if cohesive(t)][:n]
    raise SystemExit(f"unknown variant {variant!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--variants", default="all,no-phrases,reference,cohesion-0.1,cohesion-0.3")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "init_selection.json")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found", file=sys.stderr)
        return 0

    import torch

    from vocabx import load_model, load_tokenizer, read_corpus
    from vocabx.analyze import TokenSpace, count_corpus
    from vocabx.extend import extend

    torch.manual_seed(0)
    tokenizer = load_tokenizer("smollm2-135m")
    folder = DOMAINS["medquad"]
    train = list(read_corpus(folder / "train.jsonl"))
    test = list(read_corpus(folder / "test.jsonl"))
    general, domain = sample(GENERAL, 16, 1200), sample([folder / "test.jsonl"], 16, 1200)
    per_file = 8  # (sample() takes the first 16 // 2 documents of each general file: the rest is the reference)
    reference = documents_after(GENERAL, per_file)
    counts = count_corpus(train, TokenSpace.of(tokenizer))
    base = load_model("smollm2-135m")
    base_domain, base_general = bpb(base, tokenizer, domain), bpb(base, tokenizer, general)
    del base

    def n_tokens(tok, texts) -> int:
        return sum(len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"])

    test_base, general_base = n_tokens(tokenizer, test), n_tokens(tokenizer, general)
    results: dict = {
        "n": args.n, "init": "mean_shift", "machine": f"{platform.machine()}, torch {torch.__version__}",
        "base": {"domain_bpb": base_domain, "general_bpb": base_general}, "variants": {},
    }
    for variant in args.variants.split(","):
        started = time.perf_counter()
        new = choose(variant, train, tokenizer, args.n, reference, counts)
        ext = extend(load_model("smollm2-135m"), new, tokenizer=tokenizer, init="mean_shift")
        d, g = bpb(ext.model, ext.tokenizer, domain), bpb(ext.model, ext.tokenizer, general)
        test_cut = 1 - n_tokens(ext.tokenizer, test) / test_base
        row = {
            "kinds": dict(collections.Counter(t.kind for t in new)),
            "test_reduction": round(test_cut, 4),
            "general_reduction": round(1 - n_tokens(ext.tokenizer, general) / general_base, 4),
            "domain_change": round(d / base_domain - 1, 4),
            "general_change": round(g / base_general - 1, 4),
            "domain_change_per_point_of_reduction": round((d / base_domain - 1) / (100 * test_cut), 3) if test_cut > 0 else None,
            "seconds": round(time.perf_counter() - started),
        }
        results["variants"][variant] = row
        print(variant, json.dumps(row), file=sys.stderr, flush=True)
        del ext
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
