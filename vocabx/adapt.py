"""The main job: analyze -> extend -> train -> evaluate into one run folder, resumable stage by stage.

The extend stage also fits the new rows to the training text (``vocabx.fit``, the budget's
``fit_steps``, model frozen) before saving the extended model.

``RUN_DIR`` gets one folder per stage (``report/``, ``extended/``, ``adapter/``, ``evaluation/``) and a
``run.json`` recording, for each finished stage, a fingerprint of its inputs (the corpus, the model, the
budget and the settings that stage uses) and the files it wrote, with their sizes. A rerun skips every
stage whose fingerprint is unchanged and whose files are all there as written, and redoes the first other
one and all after it (with the staging folder a killed run may have left beside it). A RUN_DIR holding
the run of another model or CORPUS is refused unless ``overwrite``; one holding files that are not a run,
always (so that a mistyped RUN_DIR cannot delete them).

Budgets size the job: ``quick`` fits a few minutes on a laptop CPU, ``standard`` is the setting the
project's figures use, ``full`` trains longer on more tokens.

The evaluation uses the documents the analysis held out (split by a seeded hash of the text, so no
held-out document was seen by the analyzer or the trainer) and, when given, general text.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

from vocabx.errors import VocabxError, check_holdout, read_json

RUN_SCHEMA = "vocabx.run/1"


@dataclass(frozen=True)
class Budget:
    """How much work each stage does."""

    new_tokens: int  # tokens added (the analyzer's top N, or fewer when it finds fewer)
    fit_steps: int  # steps fitting the new rows from their pieces before training (vocabx.fit), model frozen
    max_steps: int  # optimizer steps of lora+tokens
    batch_size: int
    block_size: int
    eval_docs: int  # held-out documents scored per corpus
    eval_chars: int  # characters kept per scored document
    lr: float | None = None  # LoRA's peak learning rate (None: the trainer's, TrainConfig.lr); see ADAPT_LR
    min_cohesion: float = 0.0  # the analyzer's --min-cohesion; see QUICK_COHESION


ADAPT_LR = 6e-4
"""LoRA's peak learning rate in the quick and standard budgets, three times the trainer's 2e-4
(``TrainConfig.lr``). At the standard budget (benchmarks/RESULTS.md) it took CUAD's test contracts from
-8.75% to -11.94% against the base (general text +0.50% -> +1.75%, still within 2%) and MedQuAD's other
sites from +12.4% to +9.3% (general unchanged, +3.90%); ``make demo`` (quick): held-out domain -24.83%
-> -27.02%, general +4.28% -> +4.34%. ``full`` (2,000 steps) keeps the trainer's rate until it is
measured."""


QUICK_COHESION = 0.3
"""The quick budget's ``--min-cohesion``: its 1,024 tokens leave out phrases whose last word is a guess
(' of the'), which fire in any English text. ``make demo`` (corpora/medical, 2026-12-06, side by side):
held-out domain bits per byte -27.02% -> -28.24% against the base with 34.7% -> 34.1% fewer tokens,
general text +4.34% -> +0.96% (the 2% floor met; ranking against general text instead, ``--reference``,
gave -26.08% and +0.47%). On the real corpora at this budget (--eval test.jsonl, --general the shared
general corpora): MedQuAD +31.3% -> +18.6% against the base, 15.8% -> 11.1% shorter, general +2.93% ->
+0.11%; CUAD +6.96% -> +2.89%, 11.7% -> 10.0% shorter, general +2.68% -> -0.06%. The standard and full
budgets keep every phrase: on MedQuAD the phrases are most of the 20% shorter text at 8,192 tokens
(13.9% shorter at 0.3, benchmarks/RESULTS.md)."""


BUDGETS = {
    "quick": Budget(new_tokens=1024, fit_steps=10, max_steps=12, batch_size=2, block_size=256, eval_docs=8, eval_chars=1200, lr=ADAPT_LR, min_cohesion=QUICK_COHESION),
    "standard": Budget(new_tokens=8192, fit_steps=100, max_steps=300, batch_size=4, block_size=512, eval_docs=48, eval_chars=4000, lr=ADAPT_LR),
    "full": Budget(new_tokens=16384, fit_steps=300, max_steps=2000, batch_size=8, block_size=1024, eval_docs=200, eval_chars=8000),
}
STAGES = ("analyze", "extend", "train", "evaluate")
DEFAULT_HOLDOUT = 0.1  # (the share of documents held out when no --eval corpus is given)
NO_HELD_OUT_FIX = "give more documents, a larger --holdout (at most 0.5) or --eval CORPUS"  # (adapt's and compare's)

ADAPT_INIT = "mean"
"""The rows' initialization when training follows at once. ``vocabx extend`` defaults to ``mean_shift``,
the better start for a model used untrained (benchmarks/RESULTS.md); when training follows, the rows
the batches hold find their own level and the plain mean ends better. Measured with ``make demo``
(quick budget, corpora/medical, 1,024 new tokens, 12 steps, sparse row updates): held-out domain bits
per byte -8.77% from ``mean``, -6.00% from ``mean_shift``; general text +3.48% and +3.28%. (With
dense row updates, before 2026-11-27: -5.86% and -2.69%, general +3.33% and +3.34%.) Those runs
predate the fit; with the budget's 10 fit steps from ``mean`` the same demo gives -25.75% and +4.31%
(sparse row updates), -24.83% and +4.28% (active, :data:`ADAPT_ROWS_UPDATE`)."""


ADAPT_ROWS_UPDATE = "active"
"""The main job's row update (``TrainConfig.rows_update``; ``vocabx train`` keeps ``sparse``): active also
moves the rows of new tokens predicted where they are not due. On CUAD at the standard budget (8,192
tokens at ``--min-cohesion 0.2``): test bits per byte 0.8778 against sparse's 0.9194, general text
+0.50% against +0.56% (benchmarks/RESULTS.md)."""


FIT_BLOCK = 256
"""Block size of the row fit (at most the budget's): the map learns from many short contexts as well as
from few long ones, and a step costs less."""


def budget_of(name: str) -> Budget:
    if name not in BUDGETS:
        raise VocabxError(f"--budget {name!r} does not exist; choose one of {', '.join(BUDGETS)}")
    return BUDGETS[name]


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def corpus_fingerprint(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
    return digest.hexdigest()[:16]


def adapt(
    texts: list[str],
    run_dir: str | Path,
    *,
    model: str = "smollm2-135m",
    budget: str = "quick",
    general: list[str] | None = None,
    eval_texts: list[str] | None = None,
    holdout: float = DEFAULT_HOLDOUT,
    seed: int = 0,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
    sources: list[str] | None = None,
    new_tokens: int | None = None,
    min_cohesion: float | None = None,
    rows_update: str = ADAPT_ROWS_UPDATE,
    progress: bool | None = None,
    min_groups: int = 1,
    groups: list | None = None,
    replay: list[str] | None = None,
    replay_fraction: float = 0.25,
    lr: float | None = None,
    lora_r: int | None = None,
    reference: list[str] | None = None,
    holdout_groups: bool = False,
    max_token_chars: int | None = None,
) -> dict:
    """Run every stage that is not already done with the same inputs; return the final comparison.

    The domain evaluation uses ``eval_texts`` when given (a test set of the user's own, such as other
    sites or later documents; every document of ``texts`` then trains, but those ``eval_texts`` holds too),
    otherwise the ``holdout`` fraction of ``texts``, which neither the analyzer nor the trainer sees; with ``holdout_groups`` that
    fraction is of the ``groups``, held out whole (:func:`vocabx.analyze.held_out_groups`), so the model is
    judged on sources it never trained on, and the analysis holds out groups of its own too when two or
    more are left. ``new_tokens`` replaces the
    budget's number of tokens to add; ``min_cohesion`` (None: the budget's, :data:`QUICK_COHESION` for
    quick, 0 otherwise) and ``min_groups`` are the analyzer's (``SelectSettings``), ``groups`` one group label per text for ``min_groups`` (``TextStream.groups``);
    ``max_token_chars`` is the analyzer's too (None: its default, ``SelectSettings.max_token_chars``);
    ``rows_update`` is the trainer's (``TrainConfig.rows_update``: sparse, active or dense; default
    :data:`ADAPT_ROWS_UPDATE`).
    ``lr``: LoRA's peak learning rate (None: the budget's, :data:`ADAPT_LR`, or where it has none
    the trainer's, ``TrainConfig.lr``).
    ``lora_r``: LoRA's rank in training, with alpha twice it (the trainer's scale; None: the trainer's
    rank 4, alpha 8).
    ``replay``: general text of which ``replay_fraction`` of the training blocks are drawn (the trainer's
    ``replay_texts``); the ``general`` documents that the evaluation scores are left out of it.
    ``reference``: general text the analyzer ranks the candidates against (its ``reference``: tokens
    common there rank lower, and the report projects how much of it they rewrite); the ``general``
    documents that the evaluation scores are left out of it too.
    ``sources``: the CORPUS arguments ``texts`` were read from (the report names them; RUN_DIR keeps them,
    and refuses another run's without ``overwrite``).
    ``progress``: progress bars on stderr for fitting and training (None: when stderr is a terminal);
    without them ``log`` gets a line every tenth of each.
    """
    from vocabx.analyze import SelectSettings, analyze, holdout_test, split_by_groups
    from vocabx.evaluate import Side, evaluate, load_side, take, write_metrics
    from vocabx.extend import extend, save_extension, tokens_from_report
    from vocabx.models import load_model, load_tokenizer, local_model_fingerprint
    from vocabx.report import write_report
    from vocabx.train import ROWS_UPDATES, train

    plan = budget_of(budget)
    if new_tokens is not None:
        if new_tokens < 1:
            raise VocabxError(f"--new-tokens must be at least 1, got {new_tokens}")
        plan = replace(plan, new_tokens=new_tokens)
    if min_cohesion is None:
        min_cohesion = plan.min_cohesion
    select = SelectSettings(
        max_new=plan.new_tokens, min_cohesion=min_cohesion, min_groups=min_groups, **({"max_token_chars": max_token_chars} if max_token_chars is not None else {})
    )  # (checks them)
    # (the analyzer's default adds nothing to the analysis key, so run folders made before the option stay valid)
    long_tokens = [("max_token_chars", select.max_token_chars)] if select.max_token_chars != SelectSettings.max_token_chars else []
    # (checked before anything runs: the analysis would refuse it only after counting, leaving run.json;
    # with --eval it is only the analysis's own held-out share, which 0 turns off)
    if eval_texts is not None:
        check_holdout(holdout, what="with --eval, only the analysis's own held-out share")
    else:
        check_holdout(holdout, what="held out to evaluate the adapted model on", needed=f"without --eval the adapted model is evaluated on them; give a share such as {DEFAULT_HOLDOUT}, or --eval CORPUS")
    if holdout_groups and eval_texts is not None:
        raise VocabxError("--holdout-groups holds out groups of CORPUS for evaluation, but --eval gives the test text (every CORPUS document then trains); leave one out")
    for needed, option in ((min_groups > 1, f"--min-groups {min_groups}"), (holdout_groups, "--holdout-groups")):
        if needed and (groups is None or len(groups) != len(texts)):
            raise VocabxError(f"{option} needs one group label per document (--group-field FIELD, or several files)")
    if rows_update not in ROWS_UPDATES:
        raise VocabxError(f"--rows-update must be one of {', '.join(ROWS_UPDATES)}, got {rows_update!r}")
    scored = set(take(general or [], plan.eval_docs, None))  # (the documents the general evaluation cuts and scores)
    if scored and not any(t.strip() for t in scored):  # (found before the stages run, not by the evaluation after them)
        raise VocabxError(f"the --general documents scored (the first {plan.eval_docs}) hold no text; give general documents with text, or leave --general out")
    if replay is not None:
        replay = _unscored(replay, scored, "--replay")
        if not (isinstance(replay_fraction, (int, float)) and 0 < replay_fraction < 1):
            raise VocabxError(f"--replay-fraction must be in (0, 1), got {replay_fraction!r}")
    if reference is not None:
        reference = _unscored(reference, scored, "--reference")
    if lr is not None and not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0):
        raise VocabxError(f"--lr must be a positive number, got {lr!r}")
    lr = lr if lr is not None else plan.lr
    if lora_r is not None and not (isinstance(lora_r, int) and not isinstance(lora_r, bool) and lora_r >= 1):
        raise VocabxError(f"--lora-r must be a whole number of at least 1, got {lora_r!r}")
    # (a local folder by its full path: 'base', './base' and '/abs/base' are one model)
    model_files = local_model_fingerprint(model)
    model_id = str(Path(model).expanduser().resolve()) if model_files else model
    corpus_id = corpus_fingerprint(texts)
    if eval_texts is not None:
        held = [t for t in eval_texts if t.strip()]
        if not held:
            raise VocabxError("the --eval corpus holds no text; give documents to evaluate on, or leave --eval out to hold out part of the corpus")
        # (a document that is also a test document never trains: the scores stay held out, as in compare)
        tested = set(eval_texts)
        trains = [t not in tested for t in texts]
        train_texts = [t for t, keep in zip(texts, trains) if keep]
        train_groups = [g for g, keep in zip(groups, trains) if keep] if groups is not None else None
        left_out = len(texts) - len(train_texts)
        if left_out:
            log(f"left out of training {left_out} documents that the --eval corpus holds too")
        if not train_texts:
            raise VocabxError("every CORPUS document is in the --eval corpus too, so none is left to train on; give test text that CORPUS does not hold")
        # (the analysis and training see every document, whatever the test corpus; the analyzer still holds
        # out ``holdout`` of them for its own held-out curve, so a share other than the default is an input)
        split = "all" if holdout == DEFAULT_HOLDOUT else ("all", holdout)
        if left_out:  # (the analysis reads CORPUS less these; with none left out, the key of earlier run folders)
            split = (split, "less --eval", corpus_fingerprint(train_texts))
    else:
        if holdout_groups:  # (never judged on a text it trained on, nor on a group it trained on)
            train_texts, train_groups, held, evaluated_groups, _ = split_by_groups(texts, groups, holdout, seed)  # type: ignore[arg-type]
        else:
            is_held = holdout_test(holdout, seed)
            sides = [is_held(t) for t in texts]
            held = [t for t, h in zip(texts, sides) if h]
            train_texts = [t for t, h in zip(texts, sides) if not h]
            train_groups = [g for g, h in zip(groups, sides) if not h] if groups is not None else None
        if not held:
            raise VocabxError(f"--holdout {holdout} left no document for evaluation out of {len(texts)}; {NO_HELD_OUT_FIX}")
        split = ("groups", holdout, corpus_fingerprint([str(g) for g in groups or []])) if holdout_groups else holdout
        if holdout_groups:
            log(f"held out for evaluation: {', '.join(map(str, evaluated_groups))} ({len(held):,} documents); the run trains on the other groups")
    # (the inputs checked, RUN_DIR is read and claimed: an input error leaves it as it was, even with --overwrite)
    run = Path(run_dir)
    state = _load_state(run, overwrite)
    state = _claim(run, state, {"model": model_id, **({"corpus": sorted(_source_id(s) for s in sources)} if sources else {})}, overwrite)
    trained_general = len(scored & set(train_texts)) if scored else 0
    if trained_general:
        # (scored as general text, they were trained on: their bits per byte is not a held-out figure)
        log(
            f"warning: {trained_general} of the {len(scored)} --general documents scored are also training documents; "
            "their general bits per byte is not held out: give general text that CORPUS does not hold"
        )
    # (what the evaluation scores, as cut; its key is these texts: a change to a document past them reruns
    # nothing, and where the corpora are scored whole it is the key earlier run folders have)
    eval_held, eval_general = take(held, plan.eval_docs, plan.eval_chars), take(general or [], plan.eval_docs, plan.eval_chars)
    keys = {
        # (how many candidates the analyzer ranks, and which, are inputs too: a quick run's 1,024 must not
        # serve a standard run's 8,192)
        "analyze": _fingerprint(
            corpus_id, model_id, *([("model files", model_files)] if model_files else []),
            split, seed, plan.new_tokens, min_cohesion, *([min_groups, corpus_fingerprint([str(g) for g in groups or []])] if min_groups > 1 else []),
            *([("reference", corpus_fingerprint(reference))] if reference is not None else []),
            *long_tokens,
        ),
        "extend": _fingerprint(plan.new_tokens, ADAPT_INIT, plan.fit_steps, plan.batch_size, min(plan.block_size, FIT_BLOCK)),
        # (the default row update adds nothing, so run folders made before the option stay valid)
        "train": _fingerprint(
            plan.max_steps, plan.batch_size, plan.block_size, seed, *([rows_update] if rows_update != "sparse" else []),
            *([corpus_fingerprint(replay), replay_fraction] if replay is not None else []),
            *([("lr", lr)] if lr is not None else []),
            *([("lora_r", lora_r)] if lora_r is not None else []),
        ),
        "evaluate": _fingerprint(plan.eval_docs, plan.eval_chars, corpus_fingerprint(eval_general), corpus_fingerprint(eval_held) if eval_texts is not None else None),
    }
    chain = ""
    stale = False
    tokenizer = None
    for stage in STAGES:
        chain = _fingerprint(chain, keys[stage])
        record = state["stages"].get(stage, {})
        same = record.get("key") == chain and not stale
        missing = _missing(run, stage, record.get("files")) if same else None
        if missing:
            log(f"{stage}: {missing}; running the stage again")
        elif same and _finished(run, stage):
            log(f"{stage}: up to date, skipped")
            continue
        if not stale:
            # This stage and every later one are forgotten before their folders go: a run stopped in the
            # middle of one (train writes into its folder as it goes) must not leave a key that a rerun
            # with the earlier inputs would take for a finished stage.
            for later in STAGES[STAGES.index(stage):]:
                state["stages"].pop(later, None)
            _save_state(run, state)
        stale = True
        started = time.monotonic()
        folder = run / _folder(stage)
        if folder.exists():
            shutil.rmtree(folder)
        for leftover in run.glob(f".{folder.name}.*.tmp*"):  # (a staging folder a killed run left: outputs.staged_dir)
            shutil.rmtree(leftover, ignore_errors=True)
        tokenizer = tokenizer or load_tokenizer(model)
        log(f"{stage}: {_doing(stage, plan, len(train_texts), len(held))}")
        if stage == "analyze":
            # Another seed than the evaluation split's: with the same one every training document would
            # hash to the training side again and the analyzer's own held-out curve would be empty.
            by_group = holdout_groups and len(set(train_groups or [])) >= 2  # (group keys: split_by_groups)
            result = analyze(
                train_texts, tokenizer, holdout=holdout, seed=seed + 1, settings=select, sources=sources, groups=train_groups,
                reference=reference, holdout_groups=by_group,
            )
            write_report(result.report, folder)
            summary = {"candidates": len(result.candidates), "recommended_n": result.report["recommended_n"]}
        elif stage == "extend":
            from vocabx.report import read_report

            report = read_report(run / _folder("analyze"))
            ext = extend(model, tokens_from_report(report, plan.new_tokens), tokenizer=tokenizer, init=ADAPT_INIT, check_texts=train_texts, base_spec=model)
            summary = {"added": len(ext.added), "dropped": len(ext.dropped)}
            if plan.fit_steps and ext.added:
                from vocabx.fit import FitSettings, fit_extension

                settings = FitSettings(steps=plan.fit_steps, batch_size=plan.batch_size, block_size=min(plan.block_size, FIT_BLOCK), seed=seed)
                bars = progress if progress is not None else sys.stderr.isatty()
                fitted = fit_extension(ext, train_texts, base_tokenizer=tokenizer, settings=settings, progress=bars, on_step=None if bars else _every_tenth(plan.fit_steps, "fitting rows", log))
                summary["fit"] = {k: fitted[k] for k in ("steps", "loss_start", "loss_end", "seconds")}
            save_extension(ext, folder)
        elif stage == "train":
            trained = train(
                str(run / _folder("extend")),
                train_texts,
                folder,
                max_steps=plan.max_steps,
                batch_size=plan.batch_size,
                block_size=plan.block_size,
                seed=seed,
                eval_every=0,
                save_every=0,
                rows_update=rows_update,
                progress=progress,
                **({"replay_texts": replay, "replay_fraction": replay_fraction} if replay is not None else {}),
                **({"lr": lr} if lr is not None else {}),
                **({"lora_r": lora_r, "lora_alpha": 2.0 * lora_r} if lora_r is not None else {}),
            )
            summary = {k: v for k, v in trained.as_dict().items() if k in ("train_loss", "eval_bpb", "steps", "tokens_per_second", "adapter_bytes")}
        else:
            adapted = load_side(model, run / _folder("train"))
            base = Side(load_model(model), tokenizer, set(), label=model)
            corpora = {"held-out domain" if eval_texts is None else "domain test": eval_held}
            metrics = evaluate(base, adapted, corpora, {"general": eval_general} if general else None)
            write_metrics(metrics, folder)
            summary = {"corpora": list(metrics["corpora"])}
        written = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
        state["stages"][stage] = {"key": chain, "seconds": round(time.monotonic() - started, 1), **summary, "files": written}
        _save_state(run, state)
        log(f"{stage}: done in {state['stages'][stage]['seconds']} s")
    metrics = json.loads((run / _folder("evaluate") / "metrics.json").read_text(encoding="utf-8"))
    state["budget"] = (
        asdict(plan)
        | {"name": budget, "min_cohesion": min_cohesion, "rows_update": rows_update}
        | ({"min_groups": min_groups} if min_groups > 1 else {})
        | ({"max_token_chars": select.max_token_chars} if long_tokens else {})
        | ({"holdout_groups": evaluated_groups} if holdout_groups else {})
        | ({"replay_docs": len(replay), "replay_fraction": replay_fraction} if replay is not None else {})
        | ({"reference_docs": len(reference)} if reference is not None else {})
        | ({"lr": lr} if lr is not None else {})
        | ({"lora_r": lora_r} if lora_r is not None else {})
    )
    _save_state(run, state)
    return metrics


def _doing(stage: str, plan: "Budget", n_train: int, n_held: int) -> str:
    """What a stage is about to do, for the log line that starts it."""
    if stage == "analyze":
        return f"ranking up to {plan.new_tokens:,} new tokens on {n_train:,} documents"
    if stage == "extend":
        fit = f", then fitting their rows for {plan.fit_steps} steps of {plan.batch_size} x {min(plan.block_size, FIT_BLOCK)} tokens (model frozen)" if plan.fit_steps else ""
        return f"adding the tokens and checking the guarantees on the training documents{fit}"
    if stage == "train":
        return f"lora+tokens for {plan.max_steps} steps of {plan.batch_size} x {plan.block_size} tokens"
    return f"scoring base and adapted models on up to {plan.eval_docs} of {n_held:,} evaluation documents"


def _every_tenth(total: int, what: str, log: Callable[[str], None]) -> Callable[[int, float], None]:
    """An ``on_step`` that logs a line at each tenth of ``total`` steps (see :func:`vocabx.train.milestone`)."""
    from vocabx.train import milestone

    def on_step(step: int, loss: float) -> None:
        if milestone(step, total):
            log(f"{what}: step {step}/{total}, loss {loss:.4f}")

    return on_step


def _unscored(texts: list[str], scored: set[str], flag: str) -> list[str]:
    """The documents of ``texts`` (given with ``flag``) that the general evaluation does not score."""
    kept = [t for t in texts if t.strip() and t not in scored]
    if not kept:
        raise VocabxError(f"{flag} holds no document that --general does not evaluate; give general text beyond the evaluated documents")
    return kept


def _folder(stage: str) -> str:
    return {"analyze": "report", "extend": "extended", "train": "adapter", "evaluate": "evaluation"}[stage]


def _missing(run: Path, stage: str, files: Any) -> str | None:
    """What is gone from the files a finished stage wrote (``files``: name -> size, as run.json records
    them), such as ``'adapter/adapter_model.safetensors is missing'``; None when all are there as written
    (or run.json, written before the record, has none)."""
    if not isinstance(files, dict):
        return None
    folder = run / _folder(stage)
    for name, size in files.items():
        path = folder / name
        if not path.is_file():
            return f"{_folder(stage)}/{name} is missing"
        if isinstance(size, int) and path.stat().st_size != size:
            return f"{_folder(stage)}/{name} is not the file the stage wrote ({path.stat().st_size:,} bytes, not {size:,})"
    return None


def _finished(run: Path, stage: str) -> bool:
    """Whether a stage's folder holds what the stage writes last (train writes into its folder as it goes,
    and marks it done at the end; the other stages move a finished folder into place, whose last file must
    read back)."""
    folder = run / _folder(stage)
    if stage == "train":
        from vocabx.train.config import MARKER

        try:
            return json.loads((folder / MARKER).read_text(encoding="utf-8")).get("status") == "done"
        except (OSError, ValueError, AttributeError):
            return False
    last = {"analyze": "report.json", "extend": "vocabx.json", "evaluate": "metrics.json"}[stage]
    try:  # (a file cut short or edited by hand is not a finished stage: it runs again rather than failing later)
        written = json.loads((folder / last).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(written, dict) and (stage != "evaluate" or isinstance(written.get("corpora"), dict))


def _load_state(run: Path, overwrite: bool) -> dict:
    path = run / "run.json"
    if path.is_file():
        try:
            state = read_json(path, "pass --overwrite to start the run again or choose another -o")
        except VocabxError:
            if not overwrite:
                raise
            _empty(run)  # (a run folder whose run.json was cut short: started again)
            return {"schema": RUN_SCHEMA, "stages": {}}
        if isinstance(state, dict) and state.get("schema") == RUN_SCHEMA:
            # (a run.json edited by hand: a stage without a readable record is not finished, and runs again)
            stages = state.get("stages")
            state["stages"] = {k: v for k, v in stages.items() if isinstance(v, dict)} if isinstance(stages, dict) else {}
            return state
    if run.exists() and any(run.iterdir()):
        # (never deleted, even with --overwrite: a mistyped -o, such as the corpus's own folder, would go whole)
        raise VocabxError(f"{run} holds files that are not a vocabx run (no vocabx run.json); --overwrite replaces only a run folder: choose another -o")
    run.mkdir(parents=True, exist_ok=True)
    return {"schema": RUN_SCHEMA, "stages": {}}


def _empty(run: Path) -> None:
    """Delete what a run folder holds, but not the folder itself (it may be the current folder)."""
    for child in run.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _source_id(source: str) -> str:
    """One spelling of a CORPUS argument: a local path made absolute (``corpora/x/`` and ``./corpora/x``
    -> ``/abs/corpora/x``); ``hf:`` datasets and ``-`` as given."""
    if source == "-" or source.startswith("hf:"):
        return source
    return os.path.abspath(os.path.expanduser(source))


def _claim(run: Path, state: dict, identity: dict, overwrite: bool) -> dict:
    """The state of RUN_DIR for the run ``identity`` names (its model and, where given, its CORPUS).

    A folder holding the run of another corpus or model is refused (its stages would all run again over
    it), or with ``overwrite`` emptied; one of the same run is resumed, whatever changed in its documents.
    """
    before = state.get("run")
    if isinstance(before, dict) and any(k in before and before[k] != v for k, v in identity.items()):
        if not overwrite:
            raise VocabxError(f"{run} holds the run of {_described(before)}, not of {_described(identity)}; pass --overwrite to replace it or choose another -o")
        _empty(run)
        state = {"schema": RUN_SCHEMA, "stages": {}}
    state["run"] = (before if isinstance(state.get("run"), dict) else {}) | identity
    _save_state(run, state)
    return state


def _described(identity: dict) -> str:
    """``{"corpus": ["/a/notes"], "model": "m"}`` -> ``'/a/notes on m'``"""
    corpus = identity.get("corpus")
    return (" ".join(map(str, corpus)) + " on " if isinstance(corpus, list) else "") + str(identity.get("model"))


def _save_state(run: Path, state: dict) -> None:
    tmp = run / "run.json.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    tmp.replace(run / "run.json")


def _finite(value: Any) -> float | None:
    """``value`` where it is a finite number, else None (metrics.json writes a figure that could not be
    measured, such as the bits per byte of a diverged model, as null; an older file may lack one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _figure(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``n/a`` where it is missing, null or not finite."""
    number = _finite(value)
    return "n/a" if number is None else format(number, spec)


def comparison_table(metrics: dict) -> str:
    """The before/after table `vocabx adapt` ends with (``n/a`` for a figure that is missing or null)."""
    rows = [("", "base", "adapted", "change")]
    for name, r in metrics["corpora"].items():
        b, a = r.get("base") or {}, r.get("adapted") or {}
        reduction = r.get("token_reduction")
        rows.append((f"{name}: tokens", _figure(b.get("tokens"), ","), _figure(a.get("tokens"), ","), _figure(-reduction if _finite(reduction) is not None else None, "+.1%")))
        rows.append((f"{name}: tokens/word", _figure(b.get("tokens_per_word"), ".3f"), _figure(a.get("tokens_per_word"), ".3f"), ""))
        rows.append((f"{name}: bits per byte", _figure(b.get("bpb"), ".4f"), _figure(a.get("bpb"), ".4f"), _figure(r.get("bpb_change"), "+.2%")))
        if r.get("speedup"):
            rows.append((f"{name}: docs/s", _figure(b.get("docs_per_second"), ".2f"), _figure(a.get("docs_per_second"), ".2f"), _figure(r["speedup"], ".2f") + "x"))
        rows.append((f"{name}: new-token adoption", "", _figure(r.get("new_token_adoption"), ".1%"), ""))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows)


GENERAL_TOLERANCE = 0.02
"""General text may need this much more bits per byte before the verdict calls it a regression."""


def verdict(metrics: dict, run_dir: str | Path = "RUN_DIR", corpus: str = "CORPUS", general: str = "GENERAL", min_cohesion: float = 0.0) -> list[str]:
    """What the before/after table means for the user, and the next command when the run did not pay.

    One line per corpus: a domain corpus is judged on bits per byte against the base (no worse is the bar;
    shorter and faster are what the new tokens buy), a general one on staying within
    ``GENERAL_TOLERANCE`` of the base. Each line that fails names what to try, with commands that exist
    (``min_cohesion``: the run's, so that a stricter one is suggested).
    """
    stricter = 0.3 if min_cohesion < 0.3 else round(min(0.9, min_cohesion + 0.2), 2)
    lines = []
    for name, r in metrics["corpora"].items():
        change, shorter = r.get("bpb_change"), r.get("token_reduction")
        speedup = _finite(r.get("speedup"))
        speed = (f", scored {speedup:.2f}x faster" if speedup >= 1 else f", scored at {speedup:.2f}x the base's speed") if speedup else ""
        fewer = f"{_figure(shorter, '.1%')} fewer tokens"
        if _finite(change) is None:
            # (null in metrics.json: a model's bits per byte were not finite, such as a diverged training run)
            b, a = r.get("base") or {}, r.get("adapted") or {}
            lines.append(
                f"{name}: {fewer}{speed}, but bits per byte could not be compared (base {_figure(b.get('bpb'), '.4f')}, "
                f"adapted {_figure(a.get('bpb'), '.4f')}): a model's loss is not finite; if the adapted one's, train again "
                f"with a lower learning rate (vocabx adapt ... --lr X, below the budget's) or see the training log in {run_dir}/adapter"
            )
            continue
        if r.get("role") == "general":
            if change <= GENERAL_TOLERANCE:
                lines.append(f"{name}: kept (bits per byte {change:+.2%}, within {GENERAL_TOLERANCE:.0%} of the base)")
            else:
                lines.append(
                    f"{name}: regressed, bits per byte {change:+.2%} (more than {GENERAL_TOLERANCE:.0%}; the new tokens are "
                    f"{_figure(r.get('new_token_adoption'), '.1%')} of its tokens); to keep general text, leave out phrases whose last word "
                    f"is a guess, such as ' of the' (vocabx adapt ... --min-cohesion {stricter:g}), add fewer tokens (--new-tokens N) "
                    f"or rank them against general text (vocabx adapt ... --reference {general})"
                )
        elif change <= 0:
            lines.append(f"{name}: better, {fewer}{speed}, bits per byte {change:+.2%} against the base")
        else:
            lines.append(
                f"{name}: {fewer}{speed}, but bits per byte {change:+.2%} against the base: "
                f"the new rows are not learned yet; train longer (--budget full, or vocabx train --model "
                f"{run_dir}/extended --max-steps N), or see whether LoRA alone serves this corpus better "
                f"(vocabx compare {corpus} -o DIR)"
            )
    return lines

