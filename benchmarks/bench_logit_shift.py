"""Is a trained adapted model's prior for its new tokens off? Bits per byte with every new token's logit shifted.

Reads a finished `vocabx adapt --eval` run folder (RUN/adapter, RUN/extended/vocabx.json) and scores the
first --docs documents of the test corpus and of the general corpus, each cut to --chars (as `vocabx
adapt` cuts them), once. For each shift b in --shifts it then reports the bits per byte the same model
would give if every new token's logit were lowered by b (b < 0 raises them), from the same forward
passes: per position, the log-sum-exp over the base vocabulary and over each kind of new token is kept,
so each shift is exact, not re-scored. "phrases only" shifts the phrase tokens alone. A shift of 0
reproduces `vocabx evaluate`'s figure (the same windows and context token).

If the best shift is near 0, the model's average prior for its new tokens is calibrated and what it
loses where a base token is due (bench_trained_breakdown.py) depends on the context, which no constant
(a logit bias, a temperature on the new rows) can take back.

    python benchmarks/bench_logit_shift.py runs/cuad-c02-lr12e-4 ../shared/corpora/legal/cuad/test.jsonl \
        --general ../shared/corpora/general --out benchmarks/results/logit_shift_cuad.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

KINDS = ("phrase", "word", "subword")


def position_terms(model, tokenizer, texts: list[str], kind_of: dict[int, str], block_size: int = 1024) -> dict:
    """Per scored position: the target's logit, its kind (index into KINDS, -1 for a base token), the
    log-sum-exp of the logits over the base vocabulary and over each kind of new token; and the bytes."""
    import torch

    from vocabx.metrics import context_token_id, windows
    from vocabx.stats import backend_of

    masks = kind_masks(kind_of, model.get_input_embeddings().weight.shape[0])
    context = context_token_id(tokenizer)
    encodings = backend_of(tokenizer).encode_batch(texts, add_special_tokens=False)
    cut = [w for e in encodings for w in windows(e.ids, context, block_size)]
    parts: dict[str, list] = {"target": [], "kind": [], "base": [], "new": []}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for w in cut:
                logits = model(input_ids=torch.tensor(w[:-1])[None]).logits[0].float()
                for key, value in logit_terms(logits, w[1:], kind_of, masks).items():
                    parts[key].append(value)
    finally:
        model.train(was_training)
    out = {k: torch.cat(v) for k, v in parts.items()}
    out["bytes"] = sum(len(t.encode("utf-8")) for t in texts)
    return out


def logit_terms(logits, targets: list[int], kind_of: dict[int, str], masks) -> dict:
    """What :func:`shifted_bpb` needs of one window's logits (positions x vocabulary): each target's
    logit and kind, and the log-sum-exp over each kind's rows (``masks``, one boolean row per kind) and
    over every other row (the base vocabulary, and any padding rows, which the softmax counts too)."""
    import torch

    return {
        "target": logits.gather(1, torch.tensor(targets)[:, None])[:, 0],
        "kind": torch.tensor([KINDS.index(kind_of[t]) if t in kind_of else -1 for t in targets]),
        "base": torch.logsumexp(logits[:, ~masks.any(0)], -1),
        "new": torch.stack(
            [torch.logsumexp(logits[:, m], -1) if m.any() else torch.full((len(targets),), -1e30) for m in masks], -1
        ),
    }


def kind_masks(kind_of: dict[int, str], rows: int):
    """One boolean row per kind in KINDS: which of ``rows`` ids are new tokens of that kind."""
    import torch

    masks = torch.zeros(len(KINDS), rows, dtype=torch.bool)
    for i, kind in kind_of.items():
        masks[KINDS.index(kind), i] = True
    return masks


def shifted_bpb(terms: dict, shift_by_kind: list[float]) -> float:
    """Bits per byte with each kind's new-token logits lowered by ``shift_by_kind`` (phrase, word, subword)."""
    import math

    import torch

    shift = torch.tensor(shift_by_kind, dtype=torch.float32)
    log_z = torch.logsumexp(torch.cat([terms["base"][:, None], terms["new"] - shift[None]], 1), 1)
    kind = terms["kind"]
    own = torch.where(kind >= 0, shift[kind.clamp(min=0)], torch.zeros_like(terms["target"]))
    nll = (log_z - (terms["target"] - own)).double().sum().item()
    return nll / terms["bytes"] / math.log(2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished `vocabx adapt` run folder")
    parser.add_argument("test", help="the test corpus the run was evaluated on")
    parser.add_argument("--general", help="general text, scored the same way (optional)")
    parser.add_argument("--docs", type=int, default=48, help="documents scored per corpus (the standard budget's 48)")
    parser.add_argument("--chars", type=int, default=4000, help="each document cut to this many characters (4,000)")
    parser.add_argument("--shifts", default="-0.5,-0.25,-0.1,0,0.1,0.25,0.5,1,2", help="comma-separated logit shifts")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import torch

    from vocabx import read_corpus
    from vocabx.evaluate import load_side, take

    started = time.time()
    manifest = json.loads((args.run / "extended" / "vocabx.json").read_text())
    kind_of = {a["id"]: a["kind"] for a in manifest["added"]}
    side = load_side("smollm2-135m", args.run / "adapter")
    shifts = [float(s) for s in args.shifts.split(",")]
    corpora = {"test": args.test} | ({"general": args.general} if args.general else {})
    results: dict = {
        "run": str(args.run),
        "docs": args.docs,
        "chars": args.chars,
        "new_tokens": len(kind_of),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "corpora": {},
    }
    for name, path in corpora.items():
        texts = take(read_corpus(path), args.docs, args.chars)
        terms = position_terms(side.model, side.tokenizer, texts, kind_of)
        uniform = {str(s): round(shifted_bpb(terms, [s] * len(KINDS)), 5) for s in shifts}
        phrases = {str(s): round(shifted_bpb(terms, [s, 0.0, 0.0]), 5) for s in shifts}
        best = min(uniform, key=uniform.get)
        results["corpora"][name] = {
            "positions": len(terms["target"]),
            "uniform": uniform,
            "phrases only": phrases,
            "best uniform shift": float(best),
            "best against unshifted": round(uniform[best] / uniform[str(0.0)] - 1, 5) if str(0.0) in uniform else None,
        }
    results["seconds"] = round(time.time() - started, 1)
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
