"""vocabx evaluate and vocabx adapt, on tiny models built in the test."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

import tinymodels
from vocabx.adapt import ADAPT_LR, adapt, budget_of, comparison_table
from vocabx.errors import VocabxError
from vocabx.evaluate import Side, evaluate, load_side, write_metrics
from vocabx.extend import NewToken, extend, save_extension

ROOT = Path(__file__).resolve().parents[1]


def _docs(n: int = 80) -> list[str]:
    from vocabx import read_corpus

    return [t[:1500] for _, t in zip(range(n), read_corpus(ROOT / "corpora" / "medical"))]


def _extended(tiny_base, tmp_path):
    from vocabx.models import load_model, load_tokenizer

    tok = load_tokenizer(tiny_base)
    words = [" hepatosplenomegaly", " lymphadenopathy", " indemnify", " echocardiogram"]
    new = [NewToken("Ġ" + w[1:], w, "word") for w in words if len(tok.tokenize(w)) > 1]
    assert len(new) >= 2
    ext = extend(load_model(tiny_base), new, tokenizer=tok, base_spec=str(tiny_base))
    save_extension(ext, tmp_path / "ext")
    return tok, ext


def test_evaluate_compares_base_and_adapted(tiny_base, tmp_path):
    from vocabx.models import load_model

    tok, ext = _extended(tiny_base, tmp_path)
    texts = ["Examination revealed hepatosplenomegaly and lymphadenopathy.", "The Distributor shall indemnify the Company."] * 3
    base = Side(load_model(tiny_base), tok, set(), label="base")
    adapted = Side(ext.model, ext.tokenizer, set(ext.new_ids), label="ext")
    metrics = evaluate(base, adapted, {"domain": texts}, {"general": ["We walked to the market and went home."] * 2}, prompts=1)
    row = metrics["corpora"]["domain"]
    assert metrics["schema"] == "vocabx.metrics/1"
    assert row["adapted"]["tokens"] < row["base"]["tokens"]
    assert row["token_reduction"] == pytest.approx(1 - row["adapted"]["tokens"] / row["base"]["tokens"], abs=1e-5)
    assert row["new_token_adoption"] > 0
    assert math.isfinite(row["base"]["bpb"]) and math.isfinite(row["adapted"]["bpb"])
    assert row["base"]["tokens_per_word"] > row["adapted"]["tokens_per_word"]
    assert metrics["corpora"]["general"]["role"] == "general" and "generation" in row
    out = write_metrics(metrics, tmp_path / "eval")
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "metrics.png", "report.md"]
    assert "| domain | domain |" in (out / "report.md").read_text()
    # a figure that could not be measured is JSON null, not NaN (which strict readers refuse)
    row["adapted"]["bpb"] = row["bpb_change"] = float("nan")
    out = write_metrics(metrics, tmp_path / "eval-nan")

    def strict(name):
        raise ValueError(f"{name} is not JSON")

    written = json.loads((out / "metrics.json").read_text(), parse_constant=strict)["corpora"]["domain"]
    assert written["adapted"]["bpb"] is None and written["bpb_change"] is None and math.isnan(row["adapted"]["bpb"])


def test_evaluate_takes_a_model_name_and_a_folder_as_the_cli_does(tiny_base, tmp_path):
    import vocabx

    _extended(tiny_base, tmp_path)
    texts = ["Examination revealed hepatosplenomegaly and lymphadenopathy."] * 2
    by_name = vocabx.evaluate(str(tiny_base), tmp_path / "ext", {"domain": texts}, prompts=0)
    base, adapted = vocabx.Side, vocabx.load_side(str(tiny_base), tmp_path / "ext")
    assert isinstance(adapted, base) and by_name["adapted"] == str(tmp_path / "ext") and by_name["base"] == str(tiny_base)
    loaded = vocabx.evaluate(str(tiny_base), adapted, {"domain": texts}, prompts=0)
    for key in ("tokens", "bpb"):
        assert by_name["corpora"]["domain"]["adapted"][key] == loaded["corpora"]["domain"]["adapted"][key]
    by_path = vocabx.evaluate(Path(tiny_base), tmp_path / "ext", {"domain": texts}, prompts=0)
    assert by_path["corpora"]["domain"]["adapted"]["bpb"] == by_name["corpora"]["domain"]["adapted"]["bpb"]
    with pytest.raises(VocabxError, match="pass base as a model name or folder"):
        vocabx.evaluate(vocabx.Side(None, None), tmp_path / "ext", {"domain": texts})
    # a stream (read_corpus's, a generator) is read once, whole; None is no document, a str no corpus
    streamed = vocabx.evaluate(str(tiny_base), adapted, {"domain": (t for t in [None, *texts])}, prompts=0)
    assert streamed["corpora"]["domain"] == loaded["corpora"]["domain"] | {k: streamed["corpora"]["domain"][k] for k in ("base", "adapted", "speedup")}
    assert streamed["corpora"]["domain"]["adapted"]["bpb"] == loaded["corpora"]["domain"]["adapted"]["bpb"]
    with pytest.raises(VocabxError, match=r"evaluation corpus domain is one str of 60 characters, not a list of documents"):
        vocabx.evaluate(str(tiny_base), adapted, {"domain": texts[0]}, prompts=0)
    with pytest.raises(VocabxError, match=r"evaluate\(\) takes each corpus as a dict of name -> documents, got list"):
        vocabx.evaluate(str(tiny_base), adapted, texts, prompts=0)


def test_overwrite_replaces_a_run_folder_whose_run_json_is_unreadable(tmp_path, monkeypatch):
    from vocabx.adapt import _load_state

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"schema": "vocabx.run/1", "stag')
    with pytest.raises(VocabxError, match=r"run.json is not valid JSON .*pass --overwrite to start the run again"):
        _load_state(run, overwrite=False)
    assert _load_state(run, overwrite=True) == {"schema": "vocabx.run/1", "stages": {}} and list(run.iterdir()) == []
    # a run folder that is the current folder is emptied, not deleted from under the process
    (run / "run.json").write_text('{"schema": "vocabx.run/1", "stag')
    (run / "adapter").mkdir()
    monkeypatch.chdir(run)
    _load_state(run, overwrite=True)
    assert run.is_dir() and list(run.iterdir()) == [] and Path.cwd() == run


def test_evaluate_refuses_an_empty_corpus(tiny_base, tmp_path):
    from vocabx.models import load_model

    tok, ext = _extended(tiny_base, tmp_path)
    base = Side(load_model(tiny_base), tok)
    with pytest.raises(VocabxError, match="evaluation corpus empty has no text: it holds no document; give documents with text"):
        evaluate(base, Side(ext.model, ext.tokenizer, set(ext.new_ids)), {"empty": []})
    with pytest.raises(VocabxError, match=r"evaluation corpus blank has no text: its 2 documents are empty or only whitespace; give documents with text"):
        evaluate(base, Side(ext.model, ext.tokenizer, set(ext.new_ids)), {"notes": ["A note."]}, {"blank": [" ", "\n\t"]})


def test_an_extension_of_another_base_is_refused_naming_both(tiny_base, tmp_path, tiny_tokenizers):
    _extended(tiny_base, tmp_path)
    other = tmp_path / "other"
    tiny_tokenizers["wordpiece"].save_pretrained(other)
    tinymodels.make_causal_lm(len(tiny_tokenizers["wordpiece"])).save_pretrained(other)
    with pytest.raises(VocabxError, match=r"was made from .*base.* not from --base .*other"):
        load_side(str(other), tmp_path / "ext")


def test_a_folder_of_another_model_or_vocabulary_is_refused_even_without_a_manifest(tiny_base, tmp_path, tiny_tokenizers):
    tok = tiny_tokenizers["byte_bpe"]
    wider = tmp_path / "wider"  # (the same tokenizer, another model: a larger one of the same family)
    tok.save_pretrained(wider)
    tinymodels.make_causal_lm(len(tok), hidden=64).save_pretrained(wider)
    with pytest.raises(VocabxError, match=r"is not a model made from --base .*: hidden_size 64 against 32"):
        load_side(str(tiny_base), wider)
    foreign = tmp_path / "foreign"  # (no vocabx.json, as a merged folder: another vocabulary altogether)
    tiny_tokenizers["unigram"].save_pretrained(foreign)
    tinymodels.make_causal_lm(len(tok) + 8).save_pretrained(foreign)
    with pytest.raises(VocabxError, match=r"was not made from --base .*: [0-9,]+ of the base's [0-9,]+ tokens are missing or at other ids"):
        load_side(str(tiny_base), foreign)


def test_evaluate_scores_like_with_like(tiny_base, tmp_path, monkeypatch):
    import torch

    import vocabx.metrics

    _extended(tiny_base, tmp_path)
    texts = ["", "Examination revealed hepatosplenomegaly and lymphadenopathy. " * 40]  # (an empty first document)
    with pytest.raises(VocabxError, match="notes is given both as a domain corpus and as --general"):
        evaluate(str(tiny_base), tmp_path / "ext", {"notes": texts}, {"notes": texts}, prompts=0)
    # a folder in another precision is scored in the base's; windows never outrun either model's context
    from vocabx.models import load_model

    model = load_model(tmp_path / "ext")
    model.config.max_position_embeddings = 64
    model.to(torch.bfloat16).save_pretrained(tmp_path / "ext")
    blocks = []
    real = vocabx.metrics.bits_per_byte

    def recorded(*args, **kwargs):
        blocks.append(kwargs.get("block_size"))
        return real(*args, **kwargs)

    monkeypatch.setattr(vocabx.metrics, "bits_per_byte", recorded)
    metrics = evaluate(str(tiny_base), tmp_path / "ext", {"notes": texts}, prompts=0)
    assert metrics["dtype"] == "float32" and set(blocks) == {64}
    assert metrics["corpora"]["notes"]["adapted"]["tokens"] < metrics["corpora"]["notes"]["base"]["tokens"]


def test_unknown_budget_lists_the_budgets():
    with pytest.raises(VocabxError, match="--budget 'huge' does not exist; choose one of quick, standard, full"):
        budget_of("huge")


def test_adapt_runs_every_stage_then_skips_what_is_unchanged(tiny_base, tmp_path):
    texts = _docs()
    general = ["We walked to the market, bought some bread and cheese, and went home."] * 4
    lines: list[str] = []
    metrics = adapt(texts, tmp_path / "run", model=str(tiny_base), budget="quick", general=general, log=lines.append)
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["adapter", "evaluation", "extended", "report", "run.json"]
    # each stage says what it starts and when it is done; fitting, with no terminal for a bar, logs
    # a line at each tenth of its steps
    assert [line.split(":")[0] for line in lines if " done in " in line] == ["analyze", "extend", "train", "evaluate"]
    assert lines[0].startswith("analyze: ranking up to 1,024 new tokens on ")
    steps = budget_of("quick").fit_steps
    fitting = [line for line in lines if line.startswith("fitting rows:")]
    assert len(fitting) == min(steps, 10) and fitting[-1].startswith(f"fitting rows: step {steps}/{steps}, loss ")
    assert lines.index(fitting[0]) > lines.index(next(line for line in lines if line.startswith("extend: adding the tokens")))
    domain = metrics["corpora"]["held-out domain"]
    assert domain["adapted"]["tokens"] < domain["base"]["tokens"]
    assert "bits per byte" in comparison_table(metrics)
    state = json.loads((run / "run.json").read_text())
    assert set(state["stages"]) == {"analyze", "extend", "train", "evaluate"}
    # training follows at once, so the rows start from the plain mean (see ADAPT_INIT)
    assert json.loads((run / "extended" / "vocabx.json").read_text())["init"]["strategy"] == "mean.v1"
    # then the extend stage fits the rows for the budget's steps (vocabx.fit)
    assert json.loads((run / "extended" / "vocabx.json").read_text())["init"]["fit"]["steps"] == budget_of("quick").fit_steps
    assert state["stages"]["extend"]["fit"]["steps"] == budget_of("quick").fit_steps
    lines.clear()
    again = adapt(texts, run, model=str(tiny_base), budget="quick", general=general, log=lines.append)
    assert lines == [f"{s}: up to date, skipped" for s in ("analyze", "extend", "train", "evaluate")]
    assert again == metrics


def test_adapt_evaluates_on_a_given_test_corpus_and_trains_on_every_document(tiny_base, tmp_path):
    texts, test = _docs(80)[:60], _docs(80)[60:]
    lines: list[str] = []
    metrics = adapt(texts, tmp_path / "run", model=str(tiny_base), budget="quick", eval_texts=test, log=lines.append)
    assert list(metrics["corpora"]) == ["domain test"]
    plan = budget_of("quick")
    scored = [t[: plan.eval_chars] for t in test[: plan.eval_docs]]
    assert metrics["corpora"]["domain test"]["base"]["bytes"] == sum(len(t.encode()) for t in scored)
    trained = json.loads((tmp_path / "run" / "adapter" / "vocabx_train.json").read_text())
    data = trained["data"]
    assert data["train_docs"] + data["eval_docs"] == len(texts)  # no holdout taken from the training corpus
    # test text it does not score (past --eval's first documents, past their first characters) changes nothing
    assert len(test) > plan.eval_docs and len(test[0]) > plan.eval_chars
    lines.clear()
    unscored = [test[0] + " (a tail past the characters scored)", *test[1 : plan.eval_docs], "a document past the ones scored"]
    assert adapt(texts, tmp_path / "run", model=str(tiny_base), budget="quick", eval_texts=unscored, log=lines.append) == metrics
    assert lines == [f"{s}: up to date, skipped" for s in ("analyze", "extend", "train", "evaluate")]
    # another test corpus: analysis, extension and training are reused, only the evaluation reruns
    lines.clear()
    adapt(texts, tmp_path / "run", model=str(tiny_base), budget="quick", eval_texts=test[:5], log=lines.append)
    assert lines[:3] == [f"{s}: up to date, skipped" for s in ("analyze", "extend", "train")]
    assert lines[3].startswith("evaluate: scoring base and adapted models") and " done in " in lines[4]
    with pytest.raises(VocabxError, match="--eval corpus holds no text"):
        adapt(texts, tmp_path / "run2", model=str(tiny_base), eval_texts=["  "])


def test_adapt_holds_out_whole_groups_for_evaluation(tiny_base, tmp_path):
    from vocabx.analyze import held_out_groups

    texts = _docs(90)
    groups = ["site " + "ABC"[i % 3] for i in range(len(texts))]
    texts[1] = texts[0]  # one text that sites A and B both have
    run = tmp_path / "run"
    lines: list[str] = []
    metrics = adapt(texts, run, model=str(tiny_base), budget="quick", holdout=0.34, holdout_groups=True, groups=groups, log=lines.append)
    (group,) = held_out_groups(groups, 0.34, 0)
    assert lines[0] == f"held out for evaluation: {group} (29 documents); the run trains on the other groups"
    assert json.loads((run / "run.json").read_text())["budget"]["holdout_groups"] == [group]
    evaluated = [t for t, g in zip(texts, groups) if g == group]
    trained_on = {t for t, g in zip(texts, groups) if g != group}
    unseen = [t for t in evaluated if t not in trained_on]
    plan = budget_of("quick")
    scored = [t[: plan.eval_chars] for t in unseen[: plan.eval_docs]]
    assert metrics["corpora"]["held-out domain"]["base"]["bytes"] == sum(len(t.encode()) for t in scored)
    report = json.loads((run / "report" / "report.json").read_text())
    assert report["holdout"]["by"] == "group" and group not in report["holdout"]["groups"]  # the analysis holds out one of the two others
    assert report["corpus"]["docs"] + report["holdout"]["docs"] + report["holdout"]["duplicates_left_out"] == len(texts) - len(evaluated)
    with pytest.raises(VocabxError, match="--holdout-groups needs one group label per document"):
        adapt(texts, tmp_path / "run2", model=str(tiny_base), holdout_groups=True)
    with pytest.raises(VocabxError, match="--holdout-groups holds out groups of CORPUS for evaluation, but --eval gives the test text"):
        adapt(texts, tmp_path / "run2", model=str(tiny_base), holdout_groups=True, groups=groups, eval_texts=texts[:3])


@pytest.mark.parametrize("holdout, eval_texts, message", [
    (0.9, None, r"--holdout must be a share of the documents in \(0, 0.5\], got 0.9 \(held out to evaluate the adapted model on\); without --eval the adapted model is evaluated on them; give a share such as 0.1, or --eval CORPUS$"),
    (0, None, r"--holdout must be a share of the documents in \(0, 0.5\], got 0 \(held out to evaluate the adapted model on\); without --eval"),
    (0.7, ["a test note"], r"--holdout must be a share of the documents in \[0, 0.5\], 0 for none, got 0.7 \(with --eval, only the analysis's own held-out share\)$"),
    (True, None, r"--holdout must be a share of the documents in \(0, 0.5\], got True"),
])
def test_adapt_checks_holdout_before_it_writes_anything(tmp_path, holdout, eval_texts, message):
    with pytest.raises(VocabxError, match=message):
        adapt(_docs(20), tmp_path / "run", holdout=holdout, eval_texts=eval_texts)
    assert not (tmp_path / "run").exists()


def test_every_command_checks_holdout_with_one_rule_naming_the_flag_the_value_and_the_range():
    from vocabx.errors import check_holdout

    assert check_holdout(0.1) == 0.1 and check_holdout(0) == 0.0 and check_holdout(0.5, needed="why") == 0.5
    for bad in (0.51, -0.1, float("nan"), "0.1", None):
        with pytest.raises(VocabxError, match=re.escape(f"--holdout must be a share of the documents in [0, 0.5], 0 for none, got {bad!r}")):
            check_holdout(bad)
    with pytest.raises(VocabxError, match=re.escape("--holdout must be a share of the documents in (0, 0.5], got 0 (for this); why")):
        check_holdout(0, needed="why", what="for this")


def test_adapt_warns_when_general_text_it_scores_is_training_text(tiny_base, tmp_path, monkeypatch):
    import importlib

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before the analysis")

    monkeypatch.setattr(importlib.import_module("vocabx.analyze"), "analyze", stop)
    texts, lines = _docs(30), []
    with pytest.raises(RuntimeError, match="stopped before the analysis"):
        adapt(texts, tmp_path / "run", model=str(tiny_base), general=texts[:10], log=lines.append)
    warned = [line for line in lines if line.startswith("warning: ")]
    assert len(warned) == 1 and "--general documents scored are also training documents" in warned[0]
    lines.clear()
    with pytest.raises(RuntimeError, match="stopped before the analysis"):
        adapt(texts, tmp_path / "run2", model=str(tiny_base), general=["We walked to the market and went home."], log=lines.append)
    assert not [line for line in lines if line.startswith("warning: ")]


def test_adapt_refuses_a_folder_of_other_files_even_with_overwrite(tiny_base, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    # (--overwrite replaces a run: given a mistyped -o, such as the corpus's own folder, it deleted it whole)
    for overwrite in (False, True):
        with pytest.raises(VocabxError, match=r"run holds files that are not a vocabx run \(no vocabx run.json\); --overwrite replaces only a run folder: choose another -o"):
            adapt(_docs(20), tmp_path / "run", model=str(tiny_base), overwrite=overwrite)
        assert (tmp_path / "run" / "notes.txt").read_text() == "mine"
    (tmp_path / "run" / "run.json").write_text('{"schema": "another tool run/2"}')  # (valid JSON: not a run cut short)
    with pytest.raises(VocabxError, match=r"run holds files that are not a vocabx run \(no vocabx run.json\)"):
        adapt(_docs(20), tmp_path / "run", model=str(tiny_base), overwrite=True)
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_compare_runs_the_grid_and_reports_crossovers(tiny_base, tmp_path):
    from vocabx.compare import compare

    result = compare(
        _docs(60), tmp_path / "cmp", model=str(tiny_base), budgets=(300, 1200), seeds=(0, 1),
        new_tokens=64, batch_size=2, block_size=64, eval_docs=4, eval_chars=400, log=lambda line: None,
    )
    assert {(r["strategy"], r["budget"], r["seed"]) for r in result["runs"]} == {
        (s, b, k) for s in ("tokens", "lora+tokens", "lora", "full") for b in (300, 1200) for k in (0, 1)
    }
    assert all(math.isfinite(r["bpb"]) for r in result["runs"])
    row = result["table"]["full"]["1200"]
    values = [r["bpb"] for r in result["runs"] if r["strategy"] == "full" and r["budget"] == 1200]
    assert row["mean"] == pytest.approx(sum(values) / 2, abs=1e-4) and row["n"] == 2
    assert result["recommendation"]["strategy"] in (None, "tokens", "lora+tokens", "lora", "full")
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == ["compare.json", "compare.md", "extended", "fitted", "learning_curve.png", "runs"]
    assert all(r["fit_steps"] == (3 if r["budget"] == 300 else 10) for r in result["runs"] if r["strategy"] != "lora")
    assert "fitted" in result["method"]["init"]
    fitted = tmp_path / "cmp" / "fitted" / "300-0" / "vocabx.json"
    assert json.loads(fitted.read_text())["init"]["fit"]["steps"] == 3
    # a rerun reuses the extension and the rows fitted for each budget and seed
    before = fitted.stat().st_mtime_ns
    compare(
        _docs(60), tmp_path / "cmp", model=str(tiny_base), budgets=(300,), seeds=(0,), strategies=("tokens",),
        new_tokens=64, batch_size=2, block_size=64, eval_docs=4, eval_chars=400, log=lambda line: None,
    )
    assert fitted.stat().st_mtime_ns == before
    # other training text (here: every document, as --eval allows) rebuilds the extension and its fitted rows
    manifest = tmp_path / "cmp" / "extended" / "vocabx.json"
    made = manifest.stat().st_mtime_ns
    compare(
        _docs(60), tmp_path / "cmp", model=str(tiny_base), budgets=(300,), seeds=(0,), strategies=("tokens",),
        new_tokens=64, batch_size=2, block_size=64, eval_docs=4, eval_chars=400, eval_texts=_docs(4), log=lambda line: None,
    )
    assert manifest.stat().st_mtime_ns != made and fitted.stat().st_mtime_ns != before
    assert not (tmp_path / "cmp" / "fitted" / "1200-0").exists()
    # so does another --min-cohesion: the tokens may differ
    made = manifest.stat().st_mtime_ns
    cohesive = compare(
        _docs(60), tmp_path / "cmp", model=str(tiny_base), budgets=(300,), seeds=(0,), strategies=("tokens",),
        new_tokens=64, batch_size=2, block_size=64, eval_docs=4, eval_chars=400, eval_texts=_docs(4), log=lambda line: None,
        min_cohesion=0.5,
    )
    assert manifest.stat().st_mtime_ns != made and cohesive["method"]["min_cohesion"] == 0.5
    assert json.loads((tmp_path / "cmp" / "extended" / "compare_input.json").read_text())["min_cohesion"] == 0.5
    assert "Where the more flexible strategy wins" in (tmp_path / "cmp" / "compare.md").read_text()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"budgets": (0, 100)}, "--budgets must be positive token counts, got 0,100"),
        ({"strategies": ("lora", "adapters")}, "--strategies adapters unknown"),
        ({"fit_steps": -1}, "--fit-steps must be 0 .no fit. or more, got -1"),
        ({"eval_texts": ["", "   "]}, "the --eval corpus holds no text to score"),
        ({"min_cohesion": -0.1}, "--min-cohesion must be a share between 0 and 1, got -0.1"),
        ({"holdout": 0.7}, r"--holdout must be a share of the documents in \(0, 0.5\], got 0.7 \(held out to score the strategies on\); without --eval the strategies are scored on them; give a share such as 0.1, or --eval CORPUS$"),
        ({"holdout": 0}, r"--holdout must be a share of the documents in \(0, 0.5\], got 0 \(held out to score the strategies on\); without --eval"),
        ({"holdout": 0.7, "eval_texts": ["a test note"]}, r"--holdout must be a share of the documents in \[0, 0.5\], 0 for none, got 0.7 \(not used with --eval, which gives the text to score on\)$"),
        ({"holdout_groups": True}, "--holdout-groups needs one group label per document"),
        ({"holdout_groups": True, "eval_texts": ["a test note"]}, "--holdout-groups holds out groups of CORPUS to score on, but --eval gives"),
        ({"seeds": ()}, "--seeds must name at least one seed"),
        ({"budgets": (100, 5000)}, r"--budgets 100 is less than one block of the rows' fit \(257 tokens\)"),
    ],
)
def test_compare_names_a_bad_option_and_its_value(tmp_path, options, message):
    from vocabx.compare import compare

    with pytest.raises(VocabxError, match=message):
        compare(_docs(20), tmp_path / "cmp", log=lambda line: None, **options)
    assert not (tmp_path / "cmp").exists()


def test_compare_summary_crosses_over_only_for_good_and_recommends_against_the_base():
    from vocabx.compare import _summarize, compare_markdown

    def runs(**by_strategy):
        return [{"strategy": s, "budget": b, "seed": 0, "bpb": v} for s, values in by_strategy.items() for b, v in zip((10, 100, 1000), values)]

    # full wins only at the smallest budget, then loses: no crossover; lora+tokens wins from 100 on
    grid = runs(lora=[1.50, 1.40, 1.30], **{"lora+tokens": [1.60, 1.35, 1.20]}, full=[1.49, 1.45, 1.35])
    summary = _summarize(grid, (10, 100, 1000), ("lora", "lora+tokens", "full"), 900, base_bpb=1.45)
    assert {(c["conservative"], c["flexible"]): c["overtakes_at"] for c in summary["crossovers"]} == {("lora", "lora+tokens"): 100, ("lora+tokens", "full"): None}
    assert summary["recommendation"]["strategy"] == "lora+tokens"
    # every strategy worse than the untrained base at the corpus's size: no training recommended
    worse = _summarize(grid, (10, 100, 1000), ("lora", "lora+tokens", "full"), 10, base_bpb=1.0)
    assert worse["recommendation"]["strategy"] is None and worse["recommendation"]["best_trained"] == "full"
    result = {"model": "m", "base_bpb": 1.0, "runs": grid, "method": {"seeds": [0]}, **worse}
    md = compare_markdown(result)
    assert "**no training**: the best strategy there, full, scores no better than the base model (1.0000)" in md
    assert "| full | 1.4900 | 1.4500 | 1.3500 |" in md  # (one seed: no spread to show)
    assert "mean ± spread over seeds 0; the base" in md
    # (it said 'full beats lora+tokens at none of these budgets' beside a table where full wins at 10)
    assert "- lora+tokens beats lora from 100 tokens on" in md
    assert "- full does not stay ahead of lora+tokens: it wins at 10 tokens, not at the largest budget" in md


def test_compare_never_trains_on_an_evaluation_document_and_leaves_out_budgets_beyond_the_corpus(tiny_base, tmp_path):
    from vocabx.compare import compare

    texts, lines = _docs(30), []
    result = compare(
        texts, tmp_path / "cmp", model=str(tiny_base), budgets=(300, 10**9), seeds=(0,), strategies=("lora",),
        new_tokens=32, batch_size=2, block_size=64, eval_docs=3, eval_chars=200, eval_texts=texts[:3], log=lines.append,
    )
    assert "left out of training 3 documents that the --eval corpus holds too" in lines
    assert any(line.startswith("left out budgets 1,000,000,000: more than the ") for line in lines)
    assert {r["budget"] for r in result["runs"]} == {300} and "left out, as more than" in result["method"]["budgets"]


def test_compare_with_no_surviving_new_token_runs_only_what_can_train(tiny_base, tmp_path, monkeypatch):
    import importlib

    from vocabx.compare import compare

    monkeypatch.setattr(importlib.import_module("vocabx.extend"), "tokens_from_report", lambda report, n: [])  # (extend keeps nothing)
    options = dict(model=str(tiny_base), budgets=(300,), seeds=(0,), new_tokens=8, batch_size=2, block_size=64, eval_docs=2, eval_chars=200)
    lines: list[str] = []
    result = compare(_docs(30), tmp_path / "cmp", strategies=("tokens", "lora+tokens", "lora"), log=lines.append, **options)
    assert {r["strategy"] for r in result["runs"]} == {"lora"} and set(result["table"]) == {"lora"}
    assert "left out strategies tokens, lora+tokens: no new token survived extend's checks" in lines
    assert result["method"]["strategies_left_out"].startswith("tokens, lora+tokens")
    with pytest.raises(VocabxError, match="--strategies tokens have nothing to train; add lora or full"):
        compare(_docs(30), tmp_path / "cmp", strategies=("tokens",), log=lines.append, **options)


def test_a_saved_extension_loads_back_with_its_rows_and_manifest(tiny_base, tmp_path):
    import torch

    from vocabx.extend import load_extension

    _, ext = _extended(tiny_base, tmp_path)
    back = load_extension(tmp_path / "ext")
    assert back.new_ids == ext.new_ids and back.added == ext.added and back.manifest == ext.manifest
    rows = back.model.get_input_embeddings().weight[ext.new_ids]
    assert torch.equal(rows, ext.model.get_input_embeddings().weight[ext.new_ids])
    assert back.tokenizer.convert_tokens_to_ids(ext.added[0]["token"]) == ext.new_ids[0]
    with pytest.raises(VocabxError, match="has no vocabx.json; pass a folder written by vocabx extend"):
        load_extension(tmp_path)


def test_compare_scores_a_separate_evaluation_corpus(tiny_base, tmp_path):
    from vocabx.compare import compare

    held = [f"Held-out note {i}: the patient was seen again and the dose was kept." for i in range(5)]
    result = compare(
        _docs(30), tmp_path / "cmp", model=str(tiny_base), budgets=(300,), seeds=(0,), strategies=("lora",),
        new_tokens=32, batch_size=2, block_size=64, eval_docs=3, eval_chars=200, eval_texts=held, log=lambda line: None,
    )
    assert result["method"]["split"].startswith("3 documents of a separate evaluation corpus")
    other = compare(
        _docs(40), tmp_path / "other", model=str(tiny_base), budgets=(300,), seeds=(0,), strategies=("lora",),
        new_tokens=32, batch_size=2, block_size=64, eval_docs=3, eval_chars=200, eval_texts=held, log=lambda line: None,
    )
    # other training text, the same evaluation documents: the base model scores the same
    assert other["base_bpb"] == result["base_bpb"]
    assert other["corpus_tokens"] > result["corpus_tokens"]
    # a base model replaced at the same path: the extension in the folder is not reused
    stamp = tmp_path / "cmp" / "extended" / "compare_input.json"
    made_from = json.loads(stamp.read_text())
    vocab = json.loads((tiny_base / "config.json").read_text())["vocab_size"]
    tinymodels.make_causal_lm(vocab, seed=1).save_pretrained(tiny_base)
    again = compare(
        _docs(30), tmp_path / "cmp", model=str(tiny_base), budgets=(300,), seeds=(0,), strategies=("lora",),
        new_tokens=32, batch_size=2, block_size=64, eval_docs=3, eval_chars=200, eval_texts=held, log=lambda line: None,
    )
    assert json.loads(stamp.read_text())["model_files"] != made_from["model_files"]
    assert again["base_bpb"] != result["base_bpb"]


def test_compare_scores_held_out_groups(tiny_base, tmp_path):
    from vocabx.analyze import held_out_groups
    from vocabx.compare import compare

    texts = _docs(30)
    groups = ["site " + "ABC"[i % 3] for i in range(len(texts))]
    result = compare(
        texts, tmp_path / "cmp", model=str(tiny_base), budgets=(300,), seeds=(0,), strategies=("lora",), holdout=0.34,
        new_tokens=32, batch_size=2, block_size=64, eval_docs=3, eval_chars=200, groups=groups, holdout_groups=True, log=lambda line: None,
    )
    (group,) = held_out_groups(groups, 0.34, 0)
    assert result["method"]["split"] == (
        f"by group: 3 documents of the held-out groups {group} (whole sources, cut to 200 characters), never seen by the analyzer or any run"
    )
    # the analyzer and the runs read the other groups only: what the extension was made from says so
    made_from = json.loads((tmp_path / "cmp" / "extended" / "compare_input.json").read_text())
    assert made_from["train_docs"] == sum(1 for g in groups if g != group)


def test_budget_docs_take_the_tokens_asked_for(tiny_tokenizers):
    from vocabx.compare import budget_docs

    tok = tiny_tokenizers["byte_bpe"]
    docs = budget_docs(_docs(40), tok, 500, seed=0)
    total = sum(len(tok(d, add_special_tokens=False)["input_ids"]) for d in docs)
    assert 490 <= total <= 510
    assert budget_docs(_docs(40), tok, 500, seed=0) == docs


def _side(tokens: int, bpb: float) -> dict:
    return {"tokens": tokens, "tokens_per_word": tokens / 100, "bpb": bpb, "docs_per_second": 1.0}


def _corpus(role: str, base: tuple[int, float], adapted: tuple[int, float], adoption: float) -> dict:
    b, a = _side(*base), _side(*adapted) | {"new_token_adoption": adoption}
    return {
        "role": role,
        "base": b,
        "adapted": a,
        "token_reduction": 1 - a["tokens"] / b["tokens"],
        "bpb_change": a["bpb"] / b["bpb"] - 1,
        "speedup": 1.3,
        "new_token_adoption": adoption,
    }


def test_verdict_says_whether_the_run_paid_and_what_to_run_next():
    from vocabx.adapt import verdict

    paid = {"corpora": {"domain test": _corpus("domain", (100, 1.0), (76, 0.99), 0.2), "general": _corpus("general", (100, 1.0), (99, 1.015), 0.01)}}
    good, kept = verdict(paid, "runs/x", "train.jsonl")
    assert good.startswith("domain test: better, 24.0% fewer tokens, scored 1.30x faster, bits per byte -1.00%")
    assert kept.startswith("general: kept (bits per byte +1.50%")
    lost = {"corpora": {"domain test": _corpus("domain", (100, 1.0), (76, 1.32), 0.2), "general": _corpus("general", (100, 1.0), (95, 1.10), 0.06)}}
    bad, regressed = verdict(lost, "runs/x", "train.jsonl")
    assert "bits per byte +32.00% against the base" in bad
    assert "vocabx train --model runs/x/extended --max-steps N" in bad and "vocabx compare train.jsonl -o DIR" in bad
    assert regressed.startswith("general: regressed, bits per byte +10.00% (more than 2%; the new tokens are 6.0% of its tokens)")
    assert "--min-cohesion 0.3" in regressed and "--new-tokens N" in regressed and "vocabx adapt ... --reference GENERAL" in regressed
    # a run that already left out guessed phrases at 0.3 (the quick budget's) is told a stricter share
    assert "--min-cohesion 0.5" in verdict(lost, "runs/x", "train.jsonl", min_cohesion=0.3)[1]


def test_adapt_command_ends_with_the_verdict(monkeypatch, capsys, tmp_path):
    import importlib

    from vocabx.cli import main

    adapt_module = importlib.import_module("vocabx.adapt")
    corpus = tmp_path / "notes.jsonl"
    corpus.write_text(json.dumps({"text": "The patient was admitted."}) + "\n")
    metrics = {"corpora": {"held-out domain": _corpus("domain", (100, 1.0), (70, 0.9), 0.2)}}
    calls: list[dict] = []
    monkeypatch.setattr(adapt_module, "adapt", lambda *a, **k: calls.append(k) or metrics)
    assert main(["adapt", str(corpus), "-o", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert calls[-1]["holdout_groups"] is False
    assert main(["adapt", str(corpus), "-o", str(tmp_path / "run"), "--holdout-groups", "--quiet"]) == 0
    assert calls[-1]["holdout_groups"] is True and calls[-1]["groups"] is not None
    capsys.readouterr()
    sited = tmp_path / "sited.jsonl"
    sited.write_text(json.dumps({"text": "The patient was admitted.", "site": "A"}) + "\n")
    assert main(["adapt", str(sited), "-o", str(tmp_path / "run"), "--group-field", "site"]) == 0
    assert "flatters the adapted model on other sources; --holdout-groups evaluates" in capsys.readouterr().err
    assert main(["adapt", str(sited), "-o", str(tmp_path / "run"), "--group-field", "site", "--holdout-groups"]) == 0
    assert "flatters" not in capsys.readouterr().err
    # a run that did not pay names the compare command that scores the strategies on the same held-out groups
    metrics["corpora"]["held-out domain"] = _corpus("domain", (100, 1.0), (70, 1.2), 0.2)
    assert main(["adapt", str(sited), "-o", str(tmp_path / "run"), "--group-field", "site", "--holdout-groups", "--holdout", "0.3"]) == 0
    assert f"(vocabx compare {sited} --group-field site --holdout 0.3 --holdout-groups -o DIR)" in capsys.readouterr().out
    assert "held-out domain: bits per byte" in out
    assert "verdict: held-out domain: better, 30.0% fewer tokens" in out and f"run folder: {tmp_path / 'run'}" in out
    assert main(["adapt", str(corpus), "-o", str(tmp_path / "run"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["verdict"] == adapt_module.verdict(metrics, str(tmp_path / "run"), str(corpus))


def test_adapt_reanalyzes_when_the_number_or_kind_of_tokens_changes(tiny_base, tmp_path):
    # A quick run's report ranks 1,024 candidates; a rerun asking for another number, or for cohesive
    # phrases only, must not extend from it.
    texts = _docs()
    run = tmp_path / "run"
    adapt(texts, run, model=str(tiny_base), budget="quick", log=lambda line: None)
    lines: list[str] = []
    adapt(texts, run, model=str(tiny_base), budget="quick", new_tokens=3, log=lines.append)
    assert [line.split(":")[0] for line in lines if " done in " in line] == ["analyze", "extend", "train", "evaluate"]
    assert not any("skipped" in line for line in lines)
    state = json.loads((run / "run.json").read_text())
    assert state["budget"]["new_tokens"] == 3 and state["stages"]["extend"]["added"] <= 3
    assert state["budget"]["min_cohesion"] == 0.3  # (the quick budget's)
    assert json.loads((run / "report" / "report.json").read_text())["settings"]["min_cohesion"] == 0.3
    lines.clear()
    adapt(texts, run, model=str(tiny_base), budget="quick", new_tokens=3, min_cohesion=0.5, log=lines.append)
    assert lines[0].startswith("analyze: ranking up to 3 new tokens") and lines[1].startswith("analyze: done")
    report = json.loads((run / "report" / "report.json").read_text())
    assert report["settings"]["min_cohesion"] == 0.5
    lines.clear()  # words and phrases of both halves only: analyzed again, with the groups
    groups = ["first" if i < len(texts) // 2 else "second" for i in range(len(texts))]
    adapt(texts, run, model=str(tiny_base), budget="quick", new_tokens=3, min_cohesion=0.5, min_groups=2, groups=groups, log=lines.append)
    assert lines[1].startswith("analyze: done")
    report = json.loads((run / "report" / "report.json").read_text())
    assert report["settings"]["min_groups"] == 2 and report["corpus"]["groups"] == 2
    assert all(c["groups"] == 2 for c in report["candidates"] if c["kind"] != "subword")
    assert json.loads((run / "run.json").read_text())["budget"]["min_groups"] == 2


def test_adapt_reruns_a_stage_stopped_midway_and_keys_the_analysis_holdout_and_the_model_files(tiny_base, tmp_path, monkeypatch):
    import importlib

    loop = importlib.import_module("vocabx.train.loop")
    texts, test = _docs(80)[:60], _docs(80)[60:70]
    run = tmp_path / "run"
    first = adapt(texts, run, model=str(tiny_base), budget="quick", eval_texts=test, log=lambda line: None)

    def stopped(self):  # (Ctrl-C in the middle of training: the adapter folder holds a running marker only)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(loop._Run, "loop", stopped)
        with pytest.raises(KeyboardInterrupt):
            adapt(texts, run, model=str(tiny_base), budget="quick", eval_texts=test, lr=1e-3, log=lambda line: None)
    assert (run / "adapter").is_dir() and set(json.loads((run / "run.json").read_text())["stages"]) == {"analyze", "extend"}
    # back to the first run's inputs: the stopped stage is not taken for the finished one it replaced
    lines: list[str] = []
    again = adapt(texts, run, model=str(tiny_base), budget="quick", eval_texts=test, log=lines.append)
    assert _skipped(lines) == [True, True, False, False]
    assert again["corpora"]["domain test"]["base"]["bpb"] == first["corpora"]["domain test"]["base"]["bpb"]
    # with --eval the analysis still holds out --holdout of the documents for its own curve: an input
    lines.clear()
    adapt(texts, run, model=str(tiny_base), budget="quick", eval_texts=test, holdout=0.3, log=lines.append)
    assert _skipped(lines) == [False, False, False, False]
    # a local base model replaced at the same path is another model
    vocab = json.loads((tiny_base / "config.json").read_text())["vocab_size"]
    tinymodels.make_causal_lm(vocab, seed=1).save_pretrained(tiny_base)
    lines.clear()
    adapt(texts, run, model=str(tiny_base), budget="quick", eval_texts=test, holdout=0.3, log=lines.append)
    assert _skipped(lines) == [False, False, False, False]


def test_adapt_retrains_only_when_the_row_update_changes(tiny_base, tmp_path):
    texts = _docs()
    run = tmp_path / "run"
    adapt(texts, run, model=str(tiny_base), budget="quick", rows_update="sparse", log=lambda line: None)
    lines: list[str] = []
    adapt(texts, run, model=str(tiny_base), budget="quick", log=lines.append)  # (the default: active)
    assert [line.split(":")[0] for line in lines if "skipped" in line or " done in " in line] == ["analyze", "extend", "train", "evaluate"]
    assert _skipped(lines) == [True, True, False, False]
    assert json.loads((run / "run.json").read_text())["budget"]["rows_update"] == "active"
    assert json.loads((run / "adapter" / "vocabx_train.json").read_text())["config"]["rows_update"] == "active"
    # the budget's LoRA learning rate reaches the trainer and the run's record
    assert json.loads((run / "adapter" / "vocabx_train.json").read_text())["config"]["lr"] == ADAPT_LR == budget_of("quick").lr
    assert json.loads((run / "run.json").read_text())["budget"]["lr"] == ADAPT_LR


GENERAL_DOCS = [f"We walked to the market on day {i}, bought some bread and cheese, and went home." for i in range(30)]


def _skipped(lines: list[str]) -> list[bool]:
    """Whether each stage of a run, in order, was skipped (from adapt's log lines)."""
    return [("skipped" in line) for line in lines if "skipped" in line or " done in " in line]


def _run_with_general_then(tiny_base, tmp_path, **options) -> tuple[list[str], list[str], Path, list[str]]:
    """A quick run evaluated on general text, then the same run again with ``options``: (texts, general
    text, run folder, the second run's log lines)."""
    texts, general, run = _docs(), list(GENERAL_DOCS), tmp_path / "run"
    adapt(texts, run, model=str(tiny_base), budget="quick", general=general, log=lambda line: None)
    lines: list[str] = []
    adapt(texts, run, model=str(tiny_base), budget="quick", general=general, log=lines.append, **options)
    return texts, general, run, lines


def test_adapt_replays_general_text_it_does_not_evaluate_and_retrains_when_it_changes(tiny_base, tmp_path):
    plan = budget_of("quick")
    texts, general, run, lines = _run_with_general_then(tiny_base, tmp_path, replay=list(GENERAL_DOCS))
    assert _skipped(lines) == [True, True, False, False]
    data = json.loads((run / "adapter" / "vocabx_train.json").read_text())["data"]
    # the documents the general evaluation scores never train
    assert data["replay_docs"] == len(general) - min(plan.eval_docs, len(general)) and data["replay_fraction"] == 0.25
    assert json.loads((run / "run.json").read_text())["budget"]["replay_docs"] == data["replay_docs"]
    # LoRA's learning rate is the train stage's input too
    lines.clear()
    adapt(texts, run, model=str(tiny_base), budget="quick", general=general, replay=general, lr=5e-4, log=lines.append)
    assert _skipped(lines) == [True, True, False, False]
    assert json.loads((run / "adapter" / "vocabx_train.json").read_text())["config"]["lr"] == 5e-4
    # and so is LoRA's rank (alpha twice it)
    lines.clear()
    adapt(texts, run, model=str(tiny_base), budget="quick", general=general, replay=general, lr=5e-4, lora_r=8, log=lines.append)
    assert _skipped(lines) == [True, True, False, False]
    config = json.loads((run / "adapter" / "vocabx_train.json").read_text())["config"]
    assert (config["lora_r"], config["lora_alpha"]) == (8, 16.0)
    assert json.loads((run / "run.json").read_text())["budget"]["lora_r"] == 8
    with pytest.raises(VocabxError, match="--replay holds no document that --general does not evaluate"):
        adapt(texts, tmp_path / "run2", model=str(tiny_base), budget="quick", general=general[:5], replay=general[:5], log=lambda line: None)


def test_adapt_ranks_against_general_text_it_does_not_evaluate_and_reanalyzes_when_it_changes(tiny_base, tmp_path):
    plan = budget_of("quick")
    texts, general, run, lines = _run_with_general_then(tiny_base, tmp_path, reference=list(GENERAL_DOCS))
    # the analysis's input changed, so every stage after it runs again
    assert _skipped(lines) == [False, False, False, False]
    report = json.loads((run / "report" / "report.json").read_text())
    unscored = len(general) - min(plan.eval_docs, len(general))  # (the documents the general evaluation scores are left out)
    assert report["reference"]["docs"] == unscored and report["reference_curve"] is not None
    assert json.loads((run / "run.json").read_text())["budget"]["reference_docs"] == unscored
    with pytest.raises(VocabxError, match="--reference holds no document that --general does not evaluate"):
        adapt(texts, tmp_path / "run2", model=str(tiny_base), budget="quick", general=general[:5], reference=general[:5], log=lambda line: None)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"new_tokens": 0}, "--new-tokens must be at least 1, got 0"),
        ({"min_cohesion": 2.0}, "--min-cohesion must be a share between 0 and 1, got 2.0"),
        ({"rows_update": "lazy"}, "--rows-update must be one of sparse, active, dense, got 'lazy'"),
        ({"lr": 0.0}, "--lr must be a positive number, got 0.0"),
        ({"lora_r": 0}, "--lora-r must be a whole number of at least 1, got 0"),
        ({"min_groups": 2}, "--min-groups 2 needs one group label per document"),
        ({"min_groups": 0, "groups": ["a"]}, "--min-groups must be a whole number of at least 1, got 0"),
    ],
)
def test_adapt_refuses_bad_token_options_before_writing(tiny_base, tmp_path, options, message):
    with pytest.raises(VocabxError, match=message):
        adapt(_docs(), tmp_path / "run", model=str(tiny_base), budget="quick", log=lambda line: None, **options)
    assert not (tmp_path / "run").exists()


def test_evaluate_scores_both_models_on_the_best_device(tiny_base, tmp_path, monkeypatch):
    """With a GPU, scoring runs there (best_device says cuda); here the same wiring is checked on cpu."""
    import vocabx.models
    from vocabx.models import load_model

    tok, ext = _extended(tiny_base, tmp_path)
    base = Side(load_model(tiny_base), tok, set(), label="base")
    adapted = Side(ext.model, ext.tokenizer, set(ext.new_ids), label="ext")
    moved = []
    for side in (base, adapted):
        monkeypatch.setattr(side.model, "to", lambda *a, _to=side.model.to, _label=side.label: (moved.append((_label, a)), _to(*a))[1])
    monkeypatch.setattr(vocabx.models, "best_device", lambda: "cpu")
    metrics = evaluate(base, adapted, {"domain": ["Examination revealed hepatosplenomegaly and lymphadenopathy."] * 2}, prompts=1)
    assert moved == [("base", ("cpu",)), ("ext", ("cpu",))]
    assert metrics["corpora"]["domain"]["generation"]["generated_tokens"] > 0
    moved.clear()
    evaluate(base, adapted, {"domain": ["The Distributor shall indemnify the Company."]}, prompts=0, device="cpu")
    assert moved == [("base", ("cpu",)), ("ext", ("cpu",))]


def test_evaluate_scores_both_models_on_the_same_pieces_of_text(tiny_base, tmp_path, monkeypatch):
    import importlib

    from vocabx.models import load_model

    metrics_module = importlib.import_module("vocabx.metrics")
    tok, ext = _extended(tiny_base, tmp_path)
    long_doc = " ".join(["Examination revealed hepatosplenomegaly and lymphadenopathy."] * 40)
    seen: dict[str, list[str]] = {}
    real = metrics_module.bits_per_byte

    def recording(model, tokenizer, texts, **kw):
        texts = list(texts)
        if len(texts) > 1:  # (not the one-text warm-up)
            seen["base" if tokenizer is tok else "adapted"] = texts
        return real(model, tokenizer, texts, **kw)

    monkeypatch.setattr(metrics_module, "bits_per_byte", recording)
    base = Side(load_model(tiny_base), tok, set(), label="base")
    adapted = Side(ext.model, ext.tokenizer, set(ext.new_ids), label="ext")
    evaluate(base, adapted, {"domain": [long_doc, "A short note."]}, block_size=32, prompts=0)
    scored = list(seen.values())
    assert len(scored) == 2 and scored[0] == scored[1] and len(scored[0]) > 2
    assert "".join(scored[0]) == long_doc + "A short note."


def test_evaluate_encodes_each_corpus_once_with_the_base_tokenizer(tiny_base, tmp_path, monkeypatch):
    import importlib

    from vocabx.models import load_model
    from vocabx.stats import backend_of

    tok, ext = _extended(tiny_base, tmp_path)
    texts = [" ".join(["Examination revealed hepatosplenomegaly and lymphadenopathy."] * 20), "A short note."]
    encoded: list[tuple[object, list[str]]] = []

    class Counting:
        def __init__(self, backend, tokenizer):
            self.backend, self.tokenizer = backend, tokenizer

        def __getattr__(self, name):
            return getattr(self.backend, name)

        def encode_batch(self, batch, **kw):
            encoded.append((self.tokenizer, list(batch)))
            return self.backend.encode_batch(batch, **kw)

    for module in ("vocabx.stats", "vocabx.metrics"):
        monkeypatch.setattr(importlib.import_module(module), "backend_of", lambda t: Counting(backend_of(t), t))
    base = Side(load_model(tiny_base), tok, set(), label="base")
    adapted = Side(ext.model, ext.tokenizer, set(ext.new_ids), label="ext")
    metrics = evaluate(base, adapted, {"domain": texts}, block_size=32, prompts=0)
    # (words, the cut into windows and the token count all come from one encoding)
    assert sum(1 for t, batch in encoded if t is tok and batch == texts) == 1
    assert metrics["corpora"]["domain"]["base"]["tokens"] == sum(len(tok(t, add_special_tokens=False).input_ids) for t in texts)


def test_adapt_table_and_verdict_show_a_null_figure_as_not_available():
    # metrics.json writes a figure that could not be measured (a diverged model's bits per byte) as null;
    # the run ends by reading it back, and a rerun reads it too: the table and the verdict must not crash.
    from vocabx.adapt import verdict

    domain = _corpus("domain", (100, 1.0), (76, 0.9), 0.2) | {"bpb_change": None}
    domain["adapted"] = domain["adapted"] | {"bpb": None}
    general = _corpus("general", (100, 1.0), (99, 1.0), 0.01) | {"bpb_change": None, "speedup": None}
    general["base"] = general["base"] | {"bpb": None}
    del general["new_token_adoption"]  # (missing, as in a file written by an older version)
    metrics = {"corpora": {"domain test": domain, "general": general}}
    table = comparison_table(metrics)
    assert "domain test: bits per byte" in table and "n/a" in table.split("domain test: bits per byte")[1].splitlines()[0]
    assert "general: new-token adoption" in table
    bad, unknown = verdict(metrics, "runs/x", "train.jsonl")
    assert bad.startswith("domain test: 24.0% fewer tokens, scored 1.30x faster, but bits per byte could not be compared (base 1.0000, adapted n/a)")
    assert "--lr" in bad and "runs/x/adapter" in bad
    assert unknown.startswith("general: 1.0% fewer tokens, but bits per byte could not be compared (base n/a, adapted 1.0000)")


def test_adapt_reruns_the_stages_whose_record_run_json_lost_and_reanalyzes_for_another_max_token_chars(tiny_base, tmp_path):
    texts, run = _docs(), tmp_path / "run"
    adapt(texts, run, model=str(tiny_base), budget="quick", log=lambda line: None)
    for edit, skipped in (
        (lambda state: {"schema": state["schema"]}, [False] * 4),  # (no stages: every stage runs again)
        (lambda state: {"schema": state["schema"], "stages": []}, [False] * 4),
        (lambda state: state | {"stages": state["stages"] | {"extend": "done"}}, [True, False, False, False]),
    ):
        # (edited from the record of the files now there: a rerun's report can differ in size, as its
        # timings do, and the record of an earlier run would not match them)
        state = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps(edit(state)))
        lines: list[str] = []
        adapt(texts, run, model=str(tiny_base), budget="quick", log=lines.append)
        assert _skipped(lines) == skipped
    # the analyzer's --max-token-chars is the analysis's input; its default keeps the folder valid
    lines = []
    adapt(texts, run, model=str(tiny_base), budget="quick", max_token_chars=64, log=lines.append)
    assert _skipped(lines) == [True] * 4
    lines.clear()
    adapt(texts, run, model=str(tiny_base), budget="quick", max_token_chars=6, log=lines.append)
    assert _skipped(lines) == [False] * 4
    report = json.loads((run / "report" / "report.json").read_text())
    assert report["settings"]["max_token_chars"] == 6 and all(len(c["surface"]) <= 6 for c in report["candidates"])
    assert json.loads((run / "run.json").read_text())["budget"]["max_token_chars"] == 6
    with pytest.raises(VocabxError, match="--max-token-chars must be a whole number of at least 1"):
        adapt(texts, tmp_path / "other", model=str(tiny_base), budget="quick", max_token_chars=0, log=lambda line: None)
    assert not (tmp_path / "other").exists()


def test_adapt_reruns_a_stage_whose_file_is_missing_or_cut_short_and_knows_a_local_model_by_its_full_path(tiny_base, tmp_path, monkeypatch):
    texts, run = _docs(), tmp_path / "run"
    first = adapt(texts, run, model=str(tiny_base), budget="quick", log=lambda line: None)
    metrics = run / "evaluation" / "metrics.json"
    metrics.write_text(metrics.read_text()[:200])  # (cut short: edited by hand, or a full disk)
    lines: list[str] = []
    again = adapt(texts, run, model=str(tiny_base), budget="quick", log=lines.append)
    assert _skipped(lines) == [True, True, True, False]
    assert again["corpora"]["held-out domain"]["base"]["tokens"] == first["corpora"]["held-out domain"]["base"]["tokens"]
    # a file the stage wrote, deleted since: the stage runs again (and those after it), saying why
    (run / "adapter" / "adapter_model.safetensors").unlink()
    # a killed stage's staging folder beside the run's folders goes when that stage runs again
    leftover = run / ".adapter.0123456789ab.tmp"
    leftover.mkdir()
    (leftover / "adapter_model.safetensors").write_bytes(b"half")
    lines.clear()
    adapt(texts, run, model=str(tiny_base), budget="quick", log=lines.append)
    assert _skipped(lines) == [True, True, False, False]
    assert "train: adapter/adapter_model.safetensors is missing; running the stage again" in lines
    assert (run / "adapter" / "adapter_model.safetensors").is_file() and not leftover.exists()
    # the same folder named by a relative path, or with a trailing slash, is the same model
    monkeypatch.chdir(tiny_base.parent)
    for spec in (tiny_base.name, f"./{tiny_base.name}/"):
        lines.clear()
        adapt(texts, run, model=spec, budget="quick", log=lines.append)
        assert _skipped(lines) == [True] * 4


def test_generation_prompts_come_from_documents_with_words(tiny_base, tmp_path):
    from vocabx.evaluate import generation_adoption

    _, ext = _extended(tiny_base, tmp_path)
    adapted = Side(ext.model, ext.tokenizer, set(ext.new_ids), label="ext")
    texts = ["   ", "\n\n", "Examination revealed hepatosplenomegaly.", "The Distributor shall indemnify the Company.", "A third note."]
    generated = generation_adoption(adapted, texts, prompts=2, max_new_tokens=4)
    assert generated["prompts"] == 2 and generated["generated_tokens"] > 0


def test_adapt_refuses_another_runs_folder_without_overwrite_and_resumes_its_own(tiny_base, tmp_path, monkeypatch):
    import importlib

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before the analysis")

    monkeypatch.setattr(importlib.import_module("vocabx.analyze"), "analyze", stop)
    monkeypatch.chdir(ROOT)
    texts, run = _docs(30), tmp_path / "run"
    with pytest.raises(RuntimeError, match="stopped before the analysis"):
        adapt(texts, run, model=str(tiny_base), sources=["corpora/medical"], log=lambda line: None)
    # the same corpus named another way, or with an edited document: the same run, resumed
    for sources, given in ((["./corpora/medical/"], texts), ([str(ROOT / "corpora" / "medical")], [texts[0] + " edited", *texts[1:]])):
        with pytest.raises(RuntimeError, match="stopped before the analysis"):
            adapt(given, run, model=str(tiny_base), sources=sources, log=lambda line: None)
    # another corpus, or another model: another run's folder, refused before anything in it changes
    written = (run / "run.json").read_text()
    with pytest.raises(VocabxError, match=r"run holds the run of .*corpora/medical on .*base, not of .*corpora/legal on .*base; pass --overwrite to replace it or choose another -o"):
        adapt(texts, run, model=str(tiny_base), sources=["corpora/legal"], log=lambda line: None)
    with pytest.raises(VocabxError, match=r"holds the run of .*corpora/medical on .*base, not of .*corpora/medical on smollm2-135m; pass --overwrite"):
        adapt(texts, run, sources=["corpora/medical"], log=lambda line: None)
    assert (run / "run.json").read_text() == written
    with pytest.raises(RuntimeError, match="stopped before the analysis"):
        adapt(texts, run, model=str(tiny_base), sources=["corpora/legal"], overwrite=True, log=lambda line: None)
    assert json.loads((run / "run.json").read_text())["run"]["corpus"] == [str(ROOT / "corpora" / "legal")]


def test_an_input_error_leaves_the_run_folder_as_it_was_even_with_overwrite(tiny_base, tmp_path, monkeypatch):
    # adapt read and claimed RUN_DIR before checking its split: an --eval corpus with no text (or a
    # holdout leaving no document) left a run.json in a new folder, and with --overwrite emptied
    # another run's folder before the error.
    import importlib

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before the analysis")

    monkeypatch.setattr(importlib.import_module("vocabx.analyze"), "analyze", stop)
    monkeypatch.chdir(ROOT)
    texts, run, fresh = _docs(30), tmp_path / "run", tmp_path / "fresh"
    with pytest.raises(RuntimeError, match="stopped before the analysis"):
        adapt(texts, run, model=str(tiny_base), sources=["corpora/medical"], log=lambda line: None)
    (run / "kept.txt").write_text("a stage's output")
    written = (run / "run.json").read_text()
    for kwargs in ({"eval_texts": ["  ", "\n"]}, {"eval_texts": list(texts)}):
        with pytest.raises(VocabxError, match="--eval corpus holds no text|none is left to train on"):
            adapt(texts, run, model=str(tiny_base), sources=["corpora/legal"], overwrite=True, log=lambda line: None, **kwargs)
        assert (run / "run.json").read_text() == written and (run / "kept.txt").is_file()
        with pytest.raises(VocabxError):
            adapt(texts, fresh, model=str(tiny_base), sources=["corpora/medical"], log=lambda line: None, **kwargs)
        assert not fresh.exists()


def test_compare_scores_in_windows_no_longer_than_the_models_context(tiny_base, tmp_path, monkeypatch):
    import importlib

    from vocabx.compare import compare

    metrics_module = importlib.import_module("vocabx.metrics")
    real, blocks = metrics_module.bits_per_byte, []

    def recorded(*args, **kwargs):
        blocks.append(kwargs.get("block_size"))
        return real(*args, **kwargs)

    monkeypatch.setattr(metrics_module, "bits_per_byte", recorded)
    held = [" ".join(_docs(12))[:6000]]  # (one long document: more than the tiny model's 256 positions)
    result = compare(
        _docs(30), tmp_path / "cmp", model=str(tiny_base), budgets=(300,), seeds=(0,), strategies=("lora",),
        new_tokens=32, batch_size=2, block_size=64, eval_docs=1, eval_chars=6000, eval_texts=held, log=lambda line: None,
    )
    # (the scoring's windows, and the trainer's own evaluation, at its --block-size)
    assert set(blocks) == {256, 64} and math.isfinite(result["base_bpb"])


def test_a_holdout_that_leaves_no_document_names_the_fix(tmp_path):
    from vocabx.analyze import holdout_test
    from vocabx.compare import compare

    fix = r"--holdout 0.1 left no document for evaluation out of 2; give more documents, a larger --holdout \(at most 0.5\) or --eval CORPUS"
    texts = [t for t in _docs(40) if not holdout_test(0.1, 0)(t)][:2]  # (two documents the split keeps for training)
    with pytest.raises(VocabxError, match=fix):
        adapt(texts, tmp_path / "run", log=lambda line: None)
    with pytest.raises(VocabxError, match=fix):
        compare(texts, tmp_path / "cmp", log=lambda line: None)


def test_evaluate_names_an_adapted_folder_that_holds_no_model_and_points_a_run_folder_at_its_adapter(tiny_base, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"schema": "vocabx.run/1", "stages": {}}))
    with pytest.raises(VocabxError, match=r"--adapted .*run is the run folder of vocabx adapt, not a model; pass its adapter \(.*run/adapter\) or its extended model \(.*run/extended\)"):
        load_side(str(tiny_base), tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VocabxError, match=r"--adapted .*empty holds no model \(no config.json nor adapter_config.json\); pass a folder written by vocabx extend or vocabx train"):
        load_side(str(tiny_base), tmp_path / "empty")


def test_adapt_never_trains_on_a_document_the_eval_corpus_holds(tiny_base, tmp_path, monkeypatch):
    import importlib

    analyzed: list[list[str]] = []

    def stop(texts, *args, **kwargs):
        analyzed.append(list(texts))
        raise RuntimeError("stopped at the analysis")

    monkeypatch.setattr(importlib.import_module("vocabx.analyze"), "analyze", stop)
    texts, lines = _docs(30), []
    with pytest.raises(RuntimeError, match="stopped at the analysis"):
        adapt(texts, tmp_path / "run", model=str(tiny_base), eval_texts=[*texts[:3], "A test note of its own."], log=lines.append)
    assert "left out of training 3 documents that the --eval corpus holds too" in lines
    assert analyzed == [texts[3:]]
    with pytest.raises(VocabxError, match="every CORPUS document is in the --eval corpus too, so none is left to train on"):
        adapt(texts[:3], tmp_path / "run2", model=str(tiny_base), eval_texts=texts[:5], log=lambda line: None)


def test_adapt_refuses_general_text_with_nothing_to_score_before_any_stage(tiny_base, tmp_path):
    with pytest.raises(VocabxError, match=r"the --general documents scored \(the first 8\) hold no text; give general documents with text, or leave --general out"):
        adapt(_docs(30), tmp_path / "run", model=str(tiny_base), general=[" ", "\n"] * 4 + ["text past the scored documents"], log=lambda line: None)
    assert not (tmp_path / "run").exists()
