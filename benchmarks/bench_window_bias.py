"""What cutting scoring windows at the same token count was worth to a shorter tokenization.

Until 2026-12-06, `vocabx evaluate` cut both models' documents into windows of 1,024 tokens of their
own tokenization, so an extended tokenizer that writes the text 20-25% shorter fitted 25-33% more text
in each window. This measures that gain on the base model alone, where no new token is involved: the
first --docs documents of CORPUS (cut to --chars, as `vocabx adapt` cuts them) scored in windows of
--block tokens, in windows holding --more more tokens (about the text a shorter tokenization fits in
--block), and in `vocabx.metrics.text_windows` pieces (how both models are cut now).

    python benchmarks/bench_window_bias.py ../shared/corpora/legal/cuad/test.jsonl \
        --out benchmarks/results/window_bias_cuad.json
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="a corpus file or folder (vocabx's reader)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--docs", type=int, default=48, help="documents scored (adapt's standard budget: 48)")
    parser.add_argument("--chars", type=int, default=4000, help="characters kept per document (standard: 4,000)")
    parser.add_argument("--block", type=int, default=1024, help="tokens per window (evaluate's default)")
    parser.add_argument("--more", type=float, default=1 / 3, help="extra share of tokens in the wider windows")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from vocabx import read_corpus
    from vocabx.metrics import bits_per_byte, text_windows
    from vocabx.models import load_model, load_tokenizer

    tokenizer, model = load_tokenizer(args.model), load_model(args.model)
    docs = [t[: args.chars] for t in itertools.islice(read_corpus(args.corpus), args.docs)]
    lengths = [len(tokenizer(d, add_special_tokens=False)["input_ids"]) for d in docs]
    wide = round(args.block * (1 + args.more))
    rows = {}
    for label, texts, block in (
        (f"token windows of {args.block}", docs, args.block),
        (f"token windows of {wide}", docs, wide),
        (f"text_windows pieces of at most {args.block}", text_windows(docs, tokenizer, args.block), args.block),
    ):
        started = time.perf_counter()
        scored = bits_per_byte(model, tokenizer, texts, block_size=block, batch_size=4)
        rows[label] = {"bpb": round(scored["bpb"], 5), "pieces": len(texts), "seconds": round(time.perf_counter() - started, 1)}
        print(label, rows[label], flush=True)
    first, second = (rows[k]["bpb"] for k in list(rows)[:2])
    write_results(
        args.out,
        {
            "corpus": args.corpus,
            "model": args.model,
            "docs": len(docs),
            "chars": args.chars,
            "docs_longer_than_block": sum(n > args.block for n in lengths),
            "longest_tokens": max(lengths),
            "rows": rows,
            "wider_window_change": round(second / first - 1, 5),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.machine()}, Python {platform.python_version()}",
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
