"""Initialization quality: bits per byte right after `extend`, no training, for every strategy.

For MedQuAD and CUAD (../shared/corpora): analyze train.jsonl, extend smollm2-135m by the top N
candidates with each initialization strategy, and score bits per byte on a sample of the domain's
test.jsonl and of the general corpora (Wikipedia + web text), base model against extended model.
Bits per byte is the one measure comparable across vocabularies: the summed negative log-likelihood
of the text, in bits, over its UTF-8 bytes.

A CPU scores a few hundred tokens a second with this model, so the samples are small and fixed:
the first `--docs` documents of each file, each cut to `--chars` characters.

    python benchmarks/bench_init.py [--n 8192] [--docs 24] [--chars 1500]
    python benchmarks/bench_init.py --domains medquad --nats 0,2,3,4,6,8   # mean_shift's grid
    python benchmarks/bench_init.py --strategies mean --fit-steps 60      # rows fitted after the init (vocabx.fit)
    python benchmarks/bench_init.py --strategies mean --fit-steps 60 --fit-replay 0.25   # with general text in each fit batch
    python benchmarks/bench_init.py --strategies mean --fit-steps 60 --untie   # an output row of its own for each new token
    python benchmarks/bench_init.py --strategies mean --fit-steps 60 --min-cohesion 0.3   # only phrases whose last word follows in 30%+
    python benchmarks/bench_init.py --strategies mean_shift --n 1024 --min-cohesion 0.3 --reference-general   # ranked against general text
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from common import SCORED_GENERAL_DOCS, numbered_documents, write_results

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"
DOMAINS = {"medquad": SHARED / "medical" / "medquad", "cuad": SHARED / "legal" / "cuad"}
GENERAL = [SHARED / "general" / "wikipedia-xquad" / "test.jsonl", SHARED / "general" / "web-ewt" / "test.jsonl"]
STRATEGIES = ("mean_shift", "mean", "mean_norm", "interpolate", "hewitt", "random")


def sample(files: list[Path], docs: int, chars: int) -> list[str]:
    from vocabx import read_corpus

    out: list[str] = []
    per_file = max(1, docs // len(files))
    for f in files:
        for i, text in enumerate(read_corpus(f)):
            if i >= per_file:
                break
            out.append(text[:chars])
    return out


def bpb(model, tokenizer, texts: list[str]) -> float:
    """Bits per byte of texts, rounded as the tables show it (windows of 1,024 tokens, 8 at a time)."""
    from vocabx.metrics import bits_per_byte

    return round(bits_per_byte(model, tokenizer, texts, block_size=1024, batch_size=8)["bpb"], 4)


def top_tokens(train_texts, tokenizer, n: int, *, reference=None, **settings) -> list:
    """The analyzer's top n candidates for a domain's training texts (no holdout), as tokens to add.

    ``reference`` and ``settings`` (fields of ``SelectSettings`` other than ``max_new``) go to the analyzer."""
    from vocabx.analyze import SelectSettings, analyze
    from vocabx.extend import tokens_from_report

    report = analyze(train_texts, tokenizer, reference=reference, holdout=None, settings=SelectSettings(max_new=n, **settings)).report
    return tokens_from_report(report, n)


def shorter(base, extended, texts: list[str]) -> float:
    """How much shorter in tokens ``texts`` are with the extended tokenizer than with the base one."""

    def count(tokenizer) -> int:
        return sum(len(e.ids) for e in tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False))

    return round(1 - count(extended) / count(base), 4)


def untied(model):
    """The model with an output matrix of its own, a copy of its input matrix (same logits)."""
    import torch

    model.config.tie_word_embeddings = False
    if hasattr(model.config, "get_text_config"):
        model.config.get_text_config().tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.get_input_embeddings().weight.detach().clone())
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8192, help="new tokens (default 8192)")
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--chars", type=int, default=1500)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated: medquad, cuad")
    parser.add_argument("--nats", help="instead of --strategies: mean_shift with each of these shifts (MEAN_SHIFT_NATS), e.g. 0,2,3,4")
    parser.add_argument("--fit-steps", type=int, default=0, help="also fit the rows for this many steps on train.jsonl after each init (vocabx.fit)")
    parser.add_argument(
        "--fit-replay",
        type=float,
        default=0.0,
        help="with --fit-steps: this share of each fit batch from general text (documents after the first --replay-skip of each general file, never the scored ones)",
    )
    parser.add_argument("--replay-skip", type=int, default=SCORED_GENERAL_DOCS, help="general documents of each file kept out of the replay (the scored sample comes from them)")
    parser.add_argument("--untie", action="store_true", help="give the model its own output matrix (a copy of the input one) before extending, so each new token gets an input row and an output row")
    parser.add_argument("--min-cohesion", type=float, default=0.0, help="the analyzer's --min-cohesion for the tokens added (default 0: every phrase)")
    parser.add_argument(
        "--reference-general",
        action="store_true",
        help="rank the candidates with general text as the analyzer's --reference (documents after the first --replay-skip of each general file, never the scored ones)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "init.json")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found", file=sys.stderr)
        return 0

    import torch

    import vocabx.initialize as vinit
    from vocabx import load_model, load_tokenizer, read_corpus
    from vocabx.extend import extend

    torch.manual_seed(0)
    tokenizer = load_tokenizer("smollm2-135m")
    base_model = load_model("smollm2-135m")
    general = sample(GENERAL, args.docs, args.chars)
    if args.docs // len(GENERAL) > args.replay_skip:
        parser.error("--replay-skip must keep every scored general document out of the replay")
    numbered = numbered_documents(GENERAL)  # (i: the document's place in its file)
    unscored = [t for i, t in numbered if i >= args.replay_skip]
    held_general = [t for i, t in numbered if i < args.replay_skip]  # (whole; the scored ones among them)
    replay_texts = unscored if args.fit_replay else None
    reference = unscored if args.reference_general else None
    results: dict = {"n": args.n, "min_cohesion": args.min_cohesion, "reference_general": args.reference_general, "docs": args.docs, "chars": args.chars, "machine": f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads", "domains": {}}

    base_general = bpb(base_model, tokenizer, general)
    results["base_general_bpb"] = base_general
    runs = [(s, None) for s in args.strategies.split(",")] if not args.nats else [("mean_shift", float(x)) for x in args.nats.split(",")]
    default_nats = vinit.MEAN_SHIFT_NATS
    for name in args.domains.split(","):
        folder = DOMAINS[name]
        domain = sample([folder / "test.jsonl"], args.docs, args.chars)
        started = time.perf_counter()
        train_texts = list(read_corpus(folder / "train.jsonl"))
        new = top_tokens(train_texts, tokenizer, args.n, reference=reference, min_cohesion=args.min_cohesion)
        row: dict = {"analyze_seconds": round(time.perf_counter() - started, 1), "base_domain_bpb": bpb(base_model, tokenizer, domain), "strategies": {}}
        for strategy, nats in runs:
            vinit.MEAN_SHIFT_NATS = default_nats if nats is None else nats
            if nats is not None:
                strategy = f"mean_shift@{nats:g}"
            model = load_model("smollm2-135m")
            if args.untie:
                model = untied(model)
            ext = extend(model, new, tokenizer=tokenizer, init=strategy.split("@")[0])
            if args.untie:
                strategy = f"{strategy}+untied"
            fitted = None
            if args.fit_steps:
                from vocabx.fit import FitSettings, fit_extension

                settings = FitSettings(steps=args.fit_steps, replay=args.fit_replay)
                fitted = fit_extension(ext, train_texts, base_tokenizer=tokenizer, settings=settings, general=replay_texts)
                strategy = f"{strategy}+fit{args.fit_steps}" + (f"+replay{args.fit_replay:g}" if replay_texts else "")
            if "test_shorter" not in row:  # (the same tokens for every strategy: whole test.jsonl, general documents never replayed nor referenced)
                row["test_shorter"] = shorter(tokenizer, ext.tokenizer, list(read_corpus(folder / "test.jsonl")))
                row["general_shorter"] = shorter(tokenizer, ext.tokenizer, held_general)
            d = bpb(ext.model, ext.tokenizer, domain)
            g = bpb(ext.model, ext.tokenizer, general)
            row["strategies"][strategy] = {
                "domain_bpb": d,
                "general_bpb": g,
                "domain_change": round(d / row["base_domain_bpb"] - 1, 4),
                "general_change": round(g / base_general - 1, 4),
                "added": len(ext.added),
                **({"fit": fitted} if fitted else {}),
            }
            print(name, strategy, json.dumps(row["strategies"][strategy]), file=sys.stderr, flush=True)
            del ext, model
        results["domains"][name] = row
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
