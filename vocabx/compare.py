"""How much of a pretrained model to change for the data at hand: training strategies against data budgets.

The experiment: documents are split once into training and held-out sets by a seeded hash of their text
(no held-out document is seen by the analyzer or any run). The analyzer and the extender run once on
the training set. Then, for each data budget (the first training documents, in a seeded order, that
hold that many base-tokenizer tokens) and each strategy, a run trains for the same number of optimizer
steps, for every seed, and is scored in bits per byte on the same held-out documents:

- ``tokens``: only the new embedding rows (the most conservative);
- ``lora+tokens``: LoRA plus the new rows;
- ``lora``: LoRA on the base model, no new tokens (the baseline of vocabulary adaptation);
- ``full``: every weight of the extended model (the most flexible).

The extended strategies start from what ``vocabx adapt`` ships: the pieces' mean, then the rows fitted
to the model (``vocabx.fit``) on the budget's own documents only, about one pass over them (at most
``fit_steps`` steps), so a small budget's runs never learn from text outside their budget.

The result is a table of mean and spread over seeds, a learning-curve plot (bits per byte against
budget, one line per strategy), the budget where each more flexible strategy overtakes the more
conservative one, and a recommendation for the corpus's own size.

What it leaves out: hyperparameter search; each strategy runs with `vocabx train`'s defaults.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from vocabx.errors import VocabxError, check_holdout

COMPARE_SCHEMA = "vocabx.compare/1"
STRATEGIES = ("tokens", "lora+tokens", "lora", "full")
# from the most conservative to the most flexible, for the crossover question
FLEXIBILITY = ("tokens", "lora", "lora+tokens", "full")
NEEDS_NEW_TOKENS = ("tokens", "lora+tokens")  # (with no new token, nothing to train or the same as `lora`)


def budget_docs(texts: list[str], tokenizer: Any, budget: int, seed: int) -> list[str]:
    """The first documents, in a seeded order, whose base tokens add up to ``budget`` (the last one cut)."""
    from vocabx.stats import backend_of

    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    backend = backend_of(tokenizer)
    out, total = [], 0
    for i in order:
        ids = backend.encode(texts[i], add_special_tokens=False).ids
        if total + len(ids) >= budget:
            keep = budget - total
            if keep > 0:
                out.append(backend.decode(ids[:keep]))
            break
        out.append(texts[i])
        total += len(ids)
    return out


def compare(
    texts: list[str],
    out_dir: str | Path,
    *,
    model: str = "smollm2-135m",
    budgets: tuple[int, ...] = (10_000, 100_000, 1_000_000),
    strategies: tuple[str, ...] = STRATEGIES,
    seeds: tuple[int, ...] = (0, 1),
    holdout: float = 0.1,
    new_tokens: int = 8192,
    batch_size: int = 4,
    block_size: int = 512,
    eval_docs: int = 48,
    eval_chars: int = 4000,
    fit_steps: int = 100,
    eval_texts: list[str] | None = None,
    log: Callable[[str], None] = print,
    min_cohesion: float = 0.0,
    groups: list | None = None,
    holdout_groups: bool = False,
) -> dict:
    """Run the strategy x budget x seed grid; write compare.json, compare.md and learning_curve.png.

    ``eval_texts``: score on these documents (for instance other sources than the training text's)
    instead of holding out ``holdout`` of ``texts``; then every document of ``texts`` may train.
    ``min_cohesion``: the analyzer's (``SelectSettings.min_cohesion``) for the extended strategies' tokens.
    ``holdout_groups``: hold out ``holdout`` of the ``groups`` (one label per text), whole, instead of
    documents (:func:`vocabx.analyze.held_out_groups`): the strategies are scored on sources that no run
    and not the analyzer saw."""
    from vocabx.adapt import ADAPT_INIT, FIT_BLOCK, NO_HELD_OUT_FIX, corpus_fingerprint
    from vocabx.analyze import SelectSettings, analyze, split_by_groups, split_holdout
    from vocabx.evaluate import take
    from vocabx.extend import extend, read_manifest, save_extension, tokens_from_report
    from vocabx.fit import FitSettings
    from vocabx.metrics import bits_per_byte, text_windows
    from vocabx.models import config_context, load_model, load_tokenizer, local_model_fingerprint
    from vocabx.outputs import check_output_dir, json_safe
    from vocabx.train import train

    bad = [s for s in strategies if s not in STRATEGIES]
    if bad:
        raise VocabxError(f"--strategies {','.join(bad)} unknown; choose from {','.join(STRATEGIES)}")
    if not budgets or any(b < 1 for b in budgets):
        raise VocabxError(f"--budgets must be positive token counts, got {','.join(map(str, budgets))}")
    if fit_steps < 0:
        raise VocabxError(f"--fit-steps must be 0 (no fit) or more, got {fit_steps}")
    if not seeds:
        raise VocabxError("--seeds must name at least one seed, such as 0,1")
    budgets, seeds = tuple(sorted(set(budgets))), tuple(dict.fromkeys(seeds))  # (a budget or seed given twice: run once)
    fit_block = min(block_size, FIT_BLOCK)
    if fit_steps and any(s != "lora" for s in strategies) and budgets[0] <= fit_block:
        raise VocabxError(
            f"--budgets {budgets[0]} is less than one block of the rows' fit ({fit_block + 1} tokens); "
            f"give budgets above {fit_block} tokens, or --fit-steps 0"
        )
    select = SelectSettings(max_new=new_tokens, min_cohesion=min_cohesion)  # (checks both)
    held_groups = None
    if eval_texts is not None:
        check_holdout(holdout, what="not used with --eval, which gives the text to score on")
    else:
        check_holdout(holdout, what="held out to score the strategies on", needed="without --eval the strategies are scored on them; give a share such as 0.1, or --eval CORPUS")
    if holdout_groups:
        if eval_texts is not None:
            raise VocabxError("--holdout-groups holds out groups of CORPUS to score on, but --eval gives the text to score; leave one out")
        if groups is None or len(groups) != len(texts):
            raise VocabxError("--holdout-groups needs one group label per document (--group-field FIELD, or several files)")
        by_groups = split_by_groups(texts, groups, holdout, seed=0)  # (never scored on a text a run trained on)
        train_texts, held_groups = by_groups.train, by_groups.held_groups
        held = take(by_groups.held, eval_docs, eval_chars)
        if not held:
            raise VocabxError(f"the held-out groups {', '.join(map(str, held_groups))} hold no document that the others lack")
    elif eval_texts is not None:
        held = take(eval_texts, eval_docs, eval_chars)
        if not any(t.strip() for t in held):
            raise VocabxError("the --eval corpus holds no text to score; give documents with text")
        # (a document that is also an evaluation document never trains: the scores stay held out)
        evaluated = set(eval_texts)
        train_texts = [t for t in texts if t not in evaluated]
        if len(train_texts) < len(texts):
            log(f"left out of training {len(texts) - len(train_texts)} documents that the --eval corpus holds too")
    else:
        train_iter, held = split_holdout(iter(texts), holdout, seed=0)
        train_texts = list(train_iter)
        if not held:
            raise VocabxError(f"--holdout {holdout} left no document for evaluation out of {len(texts)}; {NO_HELD_OUT_FIX}")
        held = take(held, eval_docs, eval_chars)
    # a rerun reuses the extension already made in the folder
    out = check_output_dir(out_dir, True, "extended/vocabx.json", "comparison")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    tokenizer = load_tokenizer(model)
    corpus_tokens = sum(len(tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"]) for t in train_texts)
    log(f"{len(train_texts)} training documents ({corpus_tokens:,} tokens), {len(held)} held-out documents")
    beyond = [b for b in budgets if b > corpus_tokens]
    if beyond:
        # (such a budget would train on every document, for more steps: it is not that much data)
        budgets = tuple(b for b in budgets if b <= corpus_tokens)
        if not budgets:
            raise VocabxError(f"every budget is more than the {corpus_tokens:,} tokens of the training documents; give smaller --budgets")
        log(f"left out budgets {', '.join(f'{b:,}' for b in beyond)}: more than the {corpus_tokens:,} tokens of the training documents")
    ext_dir = out / "extended"
    init = ADAPT_INIT if fit_steps else "mean_shift"
    # reused only when made from the same training text, model, size and rows (a rerun with other
    # options, such as --eval, which lets every document train, rebuilds it and the fitted rows)
    made_from = {"model": model, "new_tokens": new_tokens, "init": init, "train_docs": len(train_texts), "train_fingerprint": corpus_fingerprint(train_texts)}
    if min_cohesion:
        made_from["min_cohesion"] = min_cohesion
    files = local_model_fingerprint(model)
    if files:  # (a model retrained or replaced at the same path is another base)
        made_from["model_files"] = files
    stamp = ext_dir / "compare_input.json"
    if not (ext_dir / "vocabx.json").is_file() or not stamp.is_file() or json.loads(stamp.read_text(encoding="utf-8")) != made_from:
        report = analyze(train_texts, tokenizer, holdout=None, settings=select).report
        save_extension(extend(model, tokens_from_report(report, new_tokens), tokenizer=tokenizer, init=init, base_spec=model), ext_dir, overwrite=True)
        stamp.write_text(json.dumps(made_from, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(out / "fitted", ignore_errors=True)
    added = bool(read_manifest(ext_dir).get("added"))
    dropped = [] if added else [s for s in strategies if s in NEEDS_NEW_TOKENS]
    if dropped:
        # (no new token survived extend's checks: `tokens` would train nothing and `lora+tokens` is `lora`)
        strategies = tuple(s for s in strategies if s not in NEEDS_NEW_TOKENS)
        if not strategies:
            raise VocabxError(
                f"no new token survived extend's checks on {len(train_texts)} training documents, so "
                f"--strategies {','.join(dropped)} have nothing to train; add lora or full, or give more text"
            )
        log(f"left out strategies {', '.join(dropped)}: no new token survived extend's checks")
    extended_runs = any(s != "lora" for s in strategies) and added  # (no new token: nothing to fit)
    runs: list[dict] = []
    base = load_model(model)
    # (windows no longer than the model's context: past it, positions are out of range or untrained)
    window = min(1024, config_context(base.config) or 1024)
    scored = text_windows(held, tokenizer, window)  # (every strategy scores the same bytes, cut the same way)
    base_bpb = bits_per_byte(base, tokenizer, scored, block_size=window)["bpb"]
    del base  # (not held in memory while the runs train)
    for budget in budgets:
        steps = max(1, math.ceil(budget / (batch_size * block_size)))
        for seed in seeds:
            docs = budget_docs(train_texts, tokenizer, budget, seed)
            source_ext, fitted = ext_dir, None
            if fit_steps and extended_runs:
                source_ext = out / "fitted" / f"{budget}-{seed}"
                settings = FitSettings(steps=min(fit_steps, math.ceil(budget / (batch_size * fit_block))), batch_size=batch_size, block_size=fit_block, seed=seed)
                fitted = _fitted(ext_dir, source_ext, docs, tokenizer, settings, log)
            for strategy in strategies:
                source = model if strategy == "lora" else str(source_ext)
                run_dir = out / "runs" / f"{strategy}-{budget}-{seed}"
                result = train(source, docs, run_dir, mode=strategy, max_steps=steps, batch_size=batch_size, block_size=block_size, seed=seed, eval_texts=held[:1], eval_every=0, save_every=0, overwrite=True)
                bpb = bits_per_byte(result.model, result.tokenizer, scored, block_size=window)["bpb"]
                run = {"strategy": strategy, "budget": budget, "seed": seed, "steps": steps, "docs": len(docs), "bpb": round(bpb, 5), "train_loss": result.train_loss}
                if fitted and strategy != "lora":
                    run["fit_steps"] = fitted["steps"]
                runs.append(run)
                log(f"budget {budget:,} seed {seed} {strategy}: {bpb:.4f} bits per byte")
    summary = _summarize(runs, budgets, strategies, corpus_tokens, base_bpb)
    result = {
        "schema": COMPARE_SCHEMA,
        "model": model,
        "method": {
            "split": (
                f"{len(held)} documents of a separate evaluation corpus (cut to {eval_chars} characters), never seen by the analyzer or any run; every corpus document may train"
                if eval_texts is not None
                else f"by group: {len(held)} documents of the held-out groups {', '.join(map(str, held_groups))} (whole sources, cut to {eval_chars} characters), never seen by the analyzer or any run"
                if held_groups is not None
                else f"by document, seeded hash of the text; {len(held)} held-out documents (cut to {eval_chars} characters), never seen by the analyzer or any run"
            ),
            "budgets": "the first training documents in a seeded order holding that many base tokens"
            + (f" (left out, as more than the {corpus_tokens:,} training tokens: {', '.join(map(str, beyond))})" if beyond else ""),
            "tokens": "the extended strategies' new tokens are chosen once, from every training document (not only a budget's own)",
            "steps": f"ceil(budget / ({batch_size} x {block_size})) optimizer steps for every strategy",
            "init": (
                f"new rows from the pieces' mean ({init}), then fitted (vocabx.fit, model frozen) on the budget's documents only: "
                f"min({fit_steps}, ceil(budget / ({batch_size} x {fit_block}))) steps of {batch_size} x {fit_block} tokens, about one pass"
                if fit_steps
                else f"new rows from the pieces ({init}), not fitted"
            ),
            "seeds": list(seeds),
            "new_tokens": new_tokens,
            **({"strategies_left_out": f"{', '.join(dropped)}: no new token survived extend's checks"} if dropped else {}),
            "min_cohesion": min_cohesion,
        },
        "base_bpb": round(base_bpb, 5),
        "corpus_tokens": corpus_tokens,
        "runs": runs,
        **summary,
        "seconds": round(time.monotonic() - started, 1),
    }
    (out / "compare.json").write_text(json.dumps(json_safe(result), indent=2) + "\n", encoding="utf-8")
    (out / "compare.md").write_text(compare_markdown(result), encoding="utf-8")
    (out / "learning_curve.png").write_bytes(learning_curve_png(result))
    return result


def _fitted(ext_dir: Path, folder: Path, docs: list[str], tokenizer: Any, settings: Any, log: Callable[[str], None]) -> dict:
    """The extension in ``ext_dir`` with its rows fitted on ``docs``, saved in ``folder`` (reused when a
    rerun finds it fitted with the same settings); returns the fit's summary."""
    from vocabx.extend import load_extension, read_manifest, save_extension
    from vocabx.fit import fit_extension

    keys = ("steps", "batch_size", "block_size", "seed")
    if (folder / "vocabx.json").is_file():
        done = read_manifest(folder).get("init", {}).get("fit", {})
        if all(done.get(k) == getattr(settings, k) for k in keys):
            return done
    ext = load_extension(ext_dir)
    summary = fit_extension(ext, docs, base_tokenizer=tokenizer, settings=settings)
    save_extension(ext, folder, overwrite=True)
    log(f"fitted the new rows on {len(docs)} documents: {settings.steps} steps, loss {summary['loss_start']:.3f} -> {summary['loss_end']:.3f}")
    return summary


def _summarize(runs: list[dict], budgets: tuple[int, ...], strategies: tuple[str, ...], corpus_tokens: int, base_bpb: float | None = None) -> dict:
    table: dict[str, dict[str, dict]] = {}
    for strategy in strategies:
        table[strategy] = {}
        for budget in budgets:
            values = [r["bpb"] for r in runs if r["strategy"] == strategy and r["budget"] == budget]
            table[strategy][str(budget)] = {
                "mean": round(statistics.fmean(values), 5),
                "std": round(statistics.stdev(values), 5) if len(values) > 1 else 0.0,
                "n": len(values),
            }
    ordered = [s for s in FLEXIBILITY if s in strategies]
    crossovers = []
    for conservative, flexible in zip(ordered, ordered[1:]):
        # the smallest budget from which the flexible strategy wins at every larger one (a win at a small
        # budget that later budgets take back is no crossover)
        wins = [table[flexible][str(b)]["mean"] < table[conservative][str(b)]["mean"] for b in budgets]
        overtakes = None
        for i in range(len(budgets) - 1, -1, -1):
            if not wins[i]:
                break
            overtakes = budgets[i]
        crossovers.append(
            {"flexible": flexible, "conservative": conservative, "overtakes_at": overtakes, "wins_at": [b for b, won in zip(budgets, wins) if won]}
        )
    nearest = min(budgets, key=lambda b: abs(math.log(b) - math.log(max(corpus_tokens, 1))))
    best = min(strategies, key=lambda s: table[s][str(nearest)]["mean"])
    recommendation: dict = {"corpus_tokens": corpus_tokens, "nearest_budget": nearest, "strategy": best}
    if base_bpb is not None and table[best][str(nearest)]["mean"] >= base_bpb:
        recommendation["strategy"] = None  # (training made held-out text worse: keep the base model)
        recommendation["best_trained"] = best
    return {"table": table, "crossovers": crossovers, "recommendation": recommendation}


def compare_markdown(result: dict) -> str:
    budgets = sorted({r["budget"] for r in result["runs"]})
    lines = [
        "# vocabx compare",
        "",
        f"Model {result['model']}; held-out bits per byte (lower is better), mean ± spread over seeds "
        f"{', '.join(map(str, result['method']['seeds']))}; the base model scores {result['base_bpb']:.4f}.",
        "",
        "| strategy | " + " | ".join(f"{b:,} tokens" for b in budgets) + " |",
        "| :-- | " + " | ".join("--:" for _ in budgets) + " |",
    ]
    for strategy, row in result["table"].items():
        lines.append(
            f"| {strategy} | "
            + " | ".join(f"{row[str(b)]['mean']:.4f}" + (f" ± {row[str(b)]['std']:.4f}" if row[str(b)]["n"] > 1 else "") for b in budgets)
            + " |"
        )
    lines += ["", "## Where the more flexible strategy wins", ""]
    for c in result["crossovers"]:
        won = c.get("wins_at") or []
        if c["overtakes_at"]:
            lines.append(f"- {c['flexible']} beats {c['conservative']} from {c['overtakes_at']:,} tokens on")
        elif won:  # (wins that a larger budget takes back: no crossover, but not 'none' either)
            shown = ", ".join(f"{b:,}" for b in won)
            lines.append(f"- {c['flexible']} does not stay ahead of {c['conservative']}: it wins at {shown} tokens, not at the largest budget")
        else:
            lines.append(f"- {c['flexible']} beats {c['conservative']} at none of these budgets")
    rec = result["recommendation"]
    choice = (
        f"**{rec['strategy']}**"
        if rec["strategy"]
        else f"**no training**: the best strategy there, {rec.get('best_trained')}, scores no better than the base model ({result['base_bpb']:.4f})"
    )
    lines += [
        "",
        f"Recommendation for this corpus ({rec['corpus_tokens']:,} training tokens, nearest budget {rec['nearest_budget']:,}): {choice}.",
        "",
        "## Method",
        "",
        *(f"- {k}: {v}" for k, v in result["method"].items()),
    ]
    return "\n".join(lines) + "\n"


def learning_curve_png(result: dict) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for strategy, row in result["table"].items():
        budgets = sorted(int(b) for b in row)
        means = [row[str(b)]["mean"] for b in budgets]
        stds = [row[str(b)]["std"] for b in budgets]
        ax.errorbar(budgets, means, yerr=stds, marker="o", capsize=3, label=strategy)
    ax.axhline(result["base_bpb"], color="grey", linestyle=":", label="base model")
    ax.set_xscale("log")
    ax.set_xlabel("training tokens (data budget)")
    ax.set_ylabel("held-out bits per byte")
    ax.set_title(f"Learning curves: {result['model']}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()
