"""Where a trained adapted model loses bits against `lora` on test text: a per-position breakdown.

Reads a finished `vocabx adapt --eval` run folder and the `lora` baseline that
`benchmarks/bench_adapt_lora.py` trained for it (RUN/lora-baseline unless --lora), and scores the first
--docs documents of the test corpus (each cut to --chars, as `vocabx adapt` cuts them) with three models:
the base model and `lora` on the base tokenization, the adapted model on the extended one. Each adapted
token's loss is set against the base's and the `lora` model's losses over the same characters, and the
extra bits are grouped by position: a new token predicted (by its kind: word, subword, phrase), the
token right after a new token, and every other position. Figures are shares of the base model's bits
over the whole sample, so the groups add up to the adapted model's change against the base (and, in the
`vs_lora` columns, against `lora`).

    python benchmarks/bench_trained_breakdown.py runs/cuad-standard ../shared/corpora/legal/cuad/test.jsonl \
        --out benchmarks/results/trained_breakdown_cuad.json

With --against-base there is no `lora` baseline: the base model takes its place, so the `vs_lora`
columns are against the base model too (where the adapted model loses bits, before any baseline).
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_init_breakdown import span_bits, token_losses  # noqa: E402
from common import write_results  # noqa: E402


def continuations(added: list[dict], base_tokenizer) -> dict[tuple[int, ...], dict[str, list[int]]]:
    """For each run of base pieces that starts a new token's pieces, the base pieces that would continue
    it into that token, by the token's kind: after ``Ġshall`` the piece ``Ġbe`` spells out ``ĠshallĠbe``,
    which the extended tokenizer writes as one token (unless, rarely, the piece is the start of a longer
    word), so mass on it there is mostly mass on a spelling the extended tokenizer never produces."""
    follow: dict[tuple[int, ...], dict[str, set[int]]] = {}
    for entry in added:
        ids = base_tokenizer.convert_tokens_to_ids(entry["pieces"])
        for j in range(1, len(ids)):
            follow.setdefault(tuple(ids[:j]), {}).setdefault(entry["kind"], set()).add(ids[j])
    return {prefix: {kind: sorted(nxt) for kind, nxt in kinds.items()} for prefix, kinds in follow.items()}


def extended_losses(model, tokenizer, text: str, context_id: int, n_base: int, follow: dict):
    """As ``token_losses``, plus per position: the probability mass on the new tokens and the loss in bits
    with that mass removed (the softmax over the base vocabulary alone; None where a new token is due),
    and the mass on base pieces that would spell out a new token with the pieces before them (see
    ``continuations``), by the new token's kind, with the loss once that mass is removed too."""
    import math

    import torch

    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids = torch.tensor([[context_id] + enc["input_ids"]])
    with torch.no_grad():
        logits = model(ids).logits[0, :-1].float()
    target = ids[0, 1:, None]
    logp = torch.log_softmax(logits, -1)
    nll = (-logp.gather(1, target)[:, 0] / math.log(2)).tolist()
    new_probs = logp[:, n_base:].exp()
    new_mass = new_probs.sum(-1).tolist()
    base_logp = torch.log_softmax(logits[:, :n_base], -1)
    renormed = (-base_logp.gather(1, target.clamp(max=n_base - 1))[:, 0] / math.log(2)).tolist()
    renormed = [r if t < n_base else None for r, t in zip(renormed, enc["input_ids"])]
    seq = ids[0].tolist()
    spelled: list[dict[str, float]] = []
    renormed_both: list[float | None] = []
    for i in range(len(nll)):  # position i predicts seq[i + 1] from seq[: i + 1]
        kinds: dict[str, set[int]] = {}
        for j in range(1, 4):
            if i + 1 - j < 1:
                break
            for kind, nxt in follow.get(tuple(seq[i + 1 - j : i + 1]), {}).items():
                kinds.setdefault(kind, set()).update(nxt)
        probs = logp[i].exp()
        spelled.append({kind: float(probs[sorted(nxt)].sum()) for kind, nxt in kinds.items()})
        t = seq[i + 1]
        every = sorted(set().union(*kinds.values())) if kinds else []
        if t >= n_base or t in every:
            renormed_both.append(None)
        else:
            keep = 1.0 - new_mass[i] - float(probs[every].sum())
            renormed_both.append(nll[i] + math.log2(max(keep, 1e-12)))
    return enc["input_ids"], enc["offset_mapping"], nll, new_mass, renormed, spelled, renormed_both, new_probs


def breakdown(base, lora, adapted, texts: list[str], kinds: dict[int, str], context_id: int, follow: dict) -> dict:
    """Extra bits of the adapted model per position group, against the base and against `lora`."""
    import torch

    vs_base: collections.Counter = collections.Counter()
    vs_lora: collections.Counter = collections.Counter()
    positions: collections.Counter = collections.Counter()
    per_token: collections.Counter = collections.Counter()
    per_token_n: collections.Counter = collections.Counter()
    mass: collections.Counter = collections.Counter()
    vs_lora_renormed: collections.Counter = collections.Counter()
    vs_lora_renormed_both: collections.Counter = collections.Counter()
    spelled_mass: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    n_base = len(base.tokenizer)
    false_total = 0.0  # (then each new token's summed false-alarm probability, a tensor)
    totals = {"base": 0.0, "lora": 0.0, "adapted": 0.0}
    for text in texts:
        _, b_off, b_loss = token_losses(base.model, base.tokenizer, text, context_id)
        _, l_off, l_loss = token_losses(lora.model, lora.tokenizer, text, context_id)
        ids, off, loss, new_mass, renormed, spelled, renormed_both, new_probs = extended_losses(adapted.model, adapted.tokenizer, text, context_id, n_base, follow)
        # each new token's probability where it is not the token due (its false alarms)
        due = torch.tensor(ids) - n_base
        false_mass = new_probs.sum(0)
        hit = due >= 0
        false_mass.index_add_(0, due[hit], -new_probs[hit.nonzero()[:, 0], due[hit]])
        false_total += false_mass
        totals["base"] += sum(b_loss)
        totals["lora"] += sum(l_loss)
        totals["adapted"] += sum(loss)
        base_bits, lora_bits = span_bits(b_off, b_loss), span_bits(l_off, l_loss)
        previous_new = False
        for i, (token_id, (_, end), bits) in enumerate(zip(ids, off, loss)):
            start = off[i - 1][1] if i else 0
            kind = kinds.get(token_id)
            group = f"new target: {kind}" if kind else "after new" if previous_new else "other"
            vs_base[group] += bits - base_bits(start, end)
            extra = bits - lora_bits(start, end)
            vs_lora[group] += extra
            mass[group] += new_mass[i]
            if renormed[i] is not None:
                vs_lora_renormed[group] += renormed[i] - lora_bits(start, end)
            if renormed_both[i] is not None:
                vs_lora_renormed_both[group] += renormed_both[i] - lora_bits(start, end)
            for spelled_kind, value in spelled[i].items():
                spelled_mass[group][spelled_kind] += value
            positions[group] += 1
            if kind:
                per_token[token_id] += extra
                per_token_n[token_id] += 1
            previous_new = kind is not None
    base_total = totals["base"]
    groups = sorted(positions, key=lambda g: -vs_lora[g])
    return {
        "bits": {k: round(v, 1) for k, v in totals.items()},
        "adapted_vs_base": round(totals["adapted"] / base_total - 1, 4),
        "lora_vs_base": round(totals["lora"] / base_total - 1, 4),
        "adapted_vs_lora": round(totals["adapted"] / totals["lora"] - 1, 4),
        "groups": {
            g: {
                "positions": positions[g],
                "vs_base": round(vs_base[g] / base_total, 4),
                "vs_lora": round(vs_lora[g] / base_total, 4),
                "vs_lora_bits_per_position": round(vs_lora[g] / positions[g], 3),
                "new_token_mass_per_position": round(mass[g] / positions[g], 4),
                "vs_lora_without_new_token_mass": round(vs_lora_renormed[g] / base_total, 4) if not g.startswith("new") else None,
                "spelling_mass_per_position": {k: round(v / positions[g], 4) for k, v in sorted(spelled_mass[g].items())},
                "vs_lora_without_new_token_or_spelling_mass": round(vs_lora_renormed_both[g] / base_total, 4) if not g.startswith("new") else None,
            }
            for g in groups
        },
        "top_false_alarms": [
            [adapted.tokenizer.convert_ids_to_tokens(int(i) + n_base), kinds.get(int(i) + n_base), per_token_n[int(i) + n_base], round(float(false_total[i]), 2)]
            for i in torch.argsort(false_total, descending=True)[:20]
        ],
        "false_alarm_mass_by_kind": {
            kind: round(float(sum(false_total[i - n_base] for i, k in kinds.items() if k == kind)), 1) for kind in ("word", "subword", "phrase")
        },
        "top_new_targets_vs_lora": [
            [adapted.tokenizer.convert_ids_to_tokens(i), kinds[i], per_token_n[i], round(v, 1)] for i, v in per_token.most_common(12)
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished `vocabx adapt --eval` run folder")
    parser.add_argument("test", help="the test corpus given to that run")
    parser.add_argument("--lora", type=Path, help="the lora baseline adapter (default RUN/lora-baseline)")
    parser.add_argument("--adapted", type=Path, help="the adapted side (default RUN/adapter; RUN/extended scores the fitted rows before training)")
    parser.add_argument("--against-base", action="store_true", help="no lora baseline: set the adapted model against the base model in every column")
    parser.add_argument("--docs", type=int, default=16)
    parser.add_argument("--chars", type=int, default=4000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    lora_dir = args.lora or args.run / "lora-baseline"
    adapted_dir = args.adapted or args.run / "adapter"
    for needed in (adapted_dir, args.run / "extended" / "vocabx.json", *([] if args.against_base else [lora_dir])):
        if not needed.exists():
            print(f"skipped: {needed} not found (run `vocabx adapt --eval` and benchmarks/bench_adapt_lora.py first)", file=sys.stderr)
            return 0

    import torch

    from vocabx.corpus import read_corpus
    from vocabx.evaluate import Side, load_side, take
    from vocabx.metrics import context_token_id
    from vocabx.models import load_model, load_tokenizer

    metrics = json.loads((args.run / "evaluation" / "metrics.json").read_text())
    model = metrics["base"]
    manifest = json.loads((args.run / "extended" / "vocabx.json").read_text())
    kinds = {a["id"]: a["kind"] for a in manifest["added"]}
    texts = take([t for t in read_corpus(args.test) if t.strip()], args.docs, args.chars)
    tokenizer = load_tokenizer(model)
    base = Side(load_model(model).eval(), tokenizer, set(), label=model)
    lora = base if args.against_base else load_side(model, lora_dir)
    adapted = load_side(model, adapted_dir)
    started = time.monotonic()
    follow = continuations(manifest["added"], tokenizer)
    result = breakdown(base, lora, adapted, texts, kinds, context_token_id(tokenizer), follow)
    write_results(
        args.out,
        {
            "run": str(args.run),
            "adapted": str(adapted_dir),
            "lora": None if args.against_base else str(lora_dir),
            "test": args.test,
            "docs": len(texts),
            "chars": args.chars,
            "machine": f"{platform.machine()}, torch {torch.__version__}",
            "seconds": round(time.monotonic() - started, 1),
            **result,
        },
        ensure_ascii=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
