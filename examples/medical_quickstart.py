"""Medical quickstart: how fragmented are clinical notes, what to add, and what it buys.

    python examples/medical_quickstart.py                      # embedded smollm2-135m, corpora/medical
    python examples/medical_quickstart.py --model ./my-model --corpus notes/ --top 2000

Steps: stats -> analyze (with a held-out curve) -> extend (real vocabulary entries, closed-form rows)
-> fit the new rows to the notes (a map shared by all new tokens, model frozen; --fit-steps 0 skips it)
-> check the guarantees on the corpus. Training and evaluation: see `vocabx train` / `evaluate`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import vocabx


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--corpus", default=str(Path(__file__).resolve().parents[1] / "corpora" / "medical"))
    parser.add_argument("--out", default="runs/medical-quickstart")
    parser.add_argument("--top", type=int, default=1000)
    parser.add_argument("--fit-steps", type=int, default=20, help="steps of 2 x 256 tokens fitting the new rows (0: none)")
    args = parser.parse_args(argv)
    out = Path(args.out)

    tokenizer = vocabx.load_tokenizer(args.model)
    stats = vocabx.corpus_stats(vocabx.read_corpus(args.corpus), tokenizer)
    print(f"{stats.docs} notes, {stats.tokens_per_word:.3f} tokens per word under {args.model}")
    print("hepatosplenomegaly ->", tokenizer.tokenize(" hepatosplenomegaly"))

    result = vocabx.analyze(vocabx.read_corpus(args.corpus), tokenizer, holdout=0.1)
    vocabx.write_report(result.report, out / "report", overwrite=True)
    for cand in result.candidates[:10]:
        print(f"  {cand.rank:>3} {cand.kind:<8} {cand.surface!r:<32} saves {cand.tokens_saved:,}")
    held = result.report["holdout_curve"]
    if held:
        print(f"held-out: {held[-1]['fraction']:.1%} fewer tokens with {held[-1]['n']} new tokens")

    new = vocabx.tokens_from_report(result.report, args.top)
    ext = vocabx.extend(args.model, new, tokenizer=tokenizer, check_texts=vocabx.read_corpus(args.corpus))
    fitted = {}
    if args.fit_steps:
        settings = vocabx.FitSettings(steps=args.fit_steps, batch_size=2, block_size=256)
        fitted = vocabx.fit_extension(ext, list(vocabx.read_corpus(args.corpus)), base_tokenizer=tokenizer, settings=settings)
        print(f"fitted the new rows: loss {fitted['loss_start']} -> {fitted['loss_end']} in {fitted['seconds']} s")
    vocabx.save_extension(ext, out / "extended", overwrite=True)
    print("hepatosplenomegaly ->", ext.tokenizer.tokenize(" hepatosplenomegaly"))

    check = vocabx.check_corpus(tokenizer, ext.tokenizer, vocabx.read_corpus(args.corpus), ext.manifest)
    summary = {k: check[k] for k in ("token_reduction", "docs_longer", "roundtrip_failures", "in_word_matches", "new_token_adoption")}
    print(json.dumps(summary))
    return {"added": len(ext.added), "fit": fitted, **summary}


if __name__ == "__main__":
    main()
