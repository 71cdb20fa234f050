"""Where an extended model loses bits on general text right after `extend`: a per-position breakdown.

smollm2-135m extended by the analyzer's top N tokens for a domain's train.jsonl (../shared/corpora),
scored on a fixed sample of the general corpora (Wikipedia + web text; or, with ``--text domain``, of the
domain's test.jsonl), base model against extended:

1. stolen mass: the general text tokenized with the *base* tokenizer, scored by the extended model over
   its whole vocabulary and over the base vocabulary alone. The difference is what the new rows cost
   merely by existing (their share of the probability mass at positions where no new token belongs),
   with the new rows that take the most;
2. the extended tokenization, position by position, each extended token's loss against the base
   model's loss over the same characters, grouped as: a new token predicted ("new target"), the token
   right after a new token ("after new"), and every other position ("other").

    python benchmarks/bench_init_breakdown.py [--domain medquad] [--n 8192] [--inits mean,mean_shift] [--text general|domain]
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import math
import platform
import sys
from pathlib import Path

from bench_init import DOMAINS, GENERAL, ROOT, SHARED, sample, top_tokens  # the same corpora and samples as the strategy table
from common import write_results


def token_losses(model, tokenizer, text: str, context_id: int):
    """Ids, character offsets and per-token losses in bits (the first token scored after ``context_id``)."""
    import torch

    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids = torch.tensor([[context_id] + enc["input_ids"]])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
    nll = -logp.gather(1, ids[0, 1:, None])[:, 0] / math.log(2)
    return enc["input_ids"], enc["offset_mapping"], nll.tolist()


def span_bits(offsets: list, losses: list[float]):
    """A function giving the bits of the tokens that end within (start, end] of the text."""
    ends, cumulative, total = [], [], 0.0
    for (_, end), loss in zip(offsets, losses):
        total += loss
        ends.append(end)
        cumulative.append(total)

    def upto(x: int) -> float:
        k = bisect.bisect_right(ends, x)
        return cumulative[k - 1] if k else 0.0

    return lambda start, end: upto(end) - upto(start)


def stolen_mass(model, tokenizer, texts: list[str], n_base: int, context_id: int, top: int = 8) -> dict:
    import torch

    full = base_only = 0.0
    positions = 0
    mass = None
    for text in texts:
        ids = torch.tensor([[context_id] + tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            logits = model(ids).logits[0, :-1].float()
        target = ids[0, 1:, None]
        full -= torch.log_softmax(logits, -1).gather(1, target).sum().item()
        base_only -= torch.log_softmax(logits[:, :n_base], -1).gather(1, target).sum().item()
        new_mass = torch.softmax(logits, -1)[:, n_base:].sum(0)
        mass = new_mass if mass is None else mass + new_mass
        positions += target.shape[0]
    order = torch.argsort(mass, descending=True)[:top]
    return {
        "cost": round(full / base_only - 1, 4),
        "new_mass_per_position": round(mass.sum().item() / positions, 4),
        "top": [[int(i) + n_base, round(mass[i].item() / positions, 5)] for i in order],
    }


def breakdown(base, tokenizer, ext_model, ext_tokenizer, texts: list[str], n_base: int, context_id: int) -> dict:
    groups = collections.Counter()
    per_token = collections.Counter()
    base_bits = 0.0
    for text in texts:
        _, b_off, b_loss = token_losses(base, tokenizer, text, context_id)
        e_ids, e_off, e_loss = token_losses(ext_model, ext_tokenizer, text, context_id)
        base_bits += sum(b_loss)
        base_span = span_bits(b_off, b_loss)
        previous_new = False
        for i, (token_id, (_, end), loss) in enumerate(zip(e_ids, e_off, e_loss)):
            start = e_off[i - 1][1] if i else 0
            extra = loss - base_span(start, end)
            is_new = token_id >= n_base
            group = "new target" if is_new else "after new" if previous_new else "other"
            groups[group] += extra
            if is_new:
                per_token[token_id] += extra
            previous_new = is_new
    return {
        "extra_share_of_base_bits": {k: round(v / base_bits, 4) for k, v in groups.items()},
        "top_new_targets": [[i, round(v, 1)] for i, v in per_token.most_common(8)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default="medquad", choices=sorted(DOMAINS))
    parser.add_argument("--n", type=int, default=8192)
    parser.add_argument("--docs", type=int, default=16)
    parser.add_argument("--chars", type=int, default=1200)
    parser.add_argument("--inits", default="mean,mean_shift")
    parser.add_argument("--text", default="general", choices=("general", "domain"), help="score the general sample (default) or the domain's test sample")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "init_breakdown.json")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} not found", file=sys.stderr)
        return 0

    import torch

    from vocabx import load_model, load_tokenizer, read_corpus
    from vocabx.extend import extend
    from vocabx.metrics import context_token_id

    tokenizer = load_tokenizer("smollm2-135m")
    base = load_model("smollm2-135m").eval()
    context_id = context_token_id(tokenizer)
    general = sample(GENERAL, args.docs, args.chars) if args.text == "general" else sample([DOMAINS[args.domain] / "test.jsonl"], args.docs, args.chars)
    new = top_tokens(read_corpus(DOMAINS[args.domain] / "train.jsonl"), tokenizer, args.n)
    results: dict = {"domain": args.domain, "text": args.text, "n": args.n, "docs": args.docs, "chars": args.chars, "machine": f"{platform.machine()}, torch {torch.__version__}", "inits": {}}
    for init in args.inits.split(","):
        ext = extend(load_model("smollm2-135m"), new, tokenizer=tokenizer, init=init)
        model = ext.model.eval()
        n_base = len(tokenizer)
        row = {
            "stolen_mass": stolen_mass(model, tokenizer, general, n_base, context_id),
            "breakdown": breakdown(base, tokenizer, model, ext.tokenizer, general, n_base, context_id),
        }
        for part in (row["stolen_mass"]["top"], row["breakdown"]["top_new_targets"]):
            for pair in part:
                pair[0] = ext.tokenizer.convert_ids_to_tokens(pair[0])
        results["inits"][init] = row
        print(init, json.dumps(row), file=sys.stderr, flush=True)
        del ext, model
    write_results(args.out, results, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
