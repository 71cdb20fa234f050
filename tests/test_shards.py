"""Analysis in shards on a tiny tokenizer: `analyze --shard I/N`, `merge-counts`, `analyze --counts`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from vocabx.cli import main

ITIS = ["gastritis", "colitis", "nephritis", "arthritis", "dermatitis", "hepatitis", "otitis", "uveitis", "rhinitis", "sinusitis"]


@pytest.fixture
def model(tmp_path, _tiny_tokenizers) -> str:
    folder = tmp_path / "tiny-tokenizer"
    copy.deepcopy(_tiny_tokenizers["byte_bpe"]).save_pretrained(folder)
    return str(folder)


def _late_terms(tmp_path: Path) -> Path:
    """1,200 documents of filler, then ten that hold a word, a phrase and a subword found nowhere before:
    past the first 400 documents of each shard, which a counts file keeps for examples."""
    texts = [f"Of, the kidney stone {i}." for i in range(1200)] + [f"Ok, zorblax; renal calculi; {w}." for w in ITIS]
    corpus = tmp_path / "late.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return corpus


def _merged(tmp_path: Path, model: str, corpus: Path, *flags: str) -> Path:
    shards = tmp_path / "shards"
    for i in range(2):
        assert main(["analyze", str(corpus), "--model", model, "-o", str(shards), "--shard", f"{i}/2", "--quiet", *flags]) == 0
    merged = shards / "merged.counts.json.gz"
    files = [str(shards / f"counts-{i}-of-2.counts.json.gz") for i in range(2)]
    assert main(["merge-counts", *files, "-o", str(merged), "--quiet"]) == 0
    return merged


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_analyze_counts_with_the_corpus_gives_every_candidate_an_example(tmp_path, model, capsys):
    corpus = _late_terms(tmp_path)
    merged = _merged(tmp_path, model, corpus, "--holdout", "0.2")
    args = ["analyze", "--counts", str(merged), "--model", model, "--min-count", "3", "--quiet"]
    # without the corpus, the counts hold only their first documents' text: the others are said, with the fix
    assert main(args + ["-o", str(tmp_path / "bare")]) == 0
    bare = _report(tmp_path / "bare")
    missing = [c["token"] for c in bare["candidates"] if not c["example"]]
    assert "Ġzorblax" in missing and "Ġkidney" not in missing
    assert any(
        note.startswith(f"{len(missing)} candidates have no example: merged counts keep the text of their first documents only")
        and "vocabx analyze --counts FILE CORPUS..." in note
        for note in bare["notes"]
    ), bare["notes"]
    # with it, the corpus is read again for the examples (its analyzed documents: the held-out ones are left out)
    assert main(args + ["-o", str(tmp_path / "full"), str(corpus)]) == 0
    full = _report(tmp_path / "full")
    by_token = {c["token"]: c for c in full["candidates"]}
    assert {"Ġzorblax", "ĠrenalĠcalculi", "itis"} <= set(by_token)
    for cand in full["candidates"]:
        assert cand["surface"] in cand["example"], cand
    assert not any("have no example" in note for note in full["notes"])
    # the counts are what they were: the corpus only lends its text
    assert [(c["token"], c["count"]) for c in full["candidates"]] == [(c["token"], c["count"]) for c in bare["candidates"]]


def test_analyze_counts_names_the_holdout_of_the_shards_only_when_it_matters(tmp_path, model, capsys):
    corpus = _late_terms(tmp_path)
    merged = _merged(tmp_path, model, corpus, "--holdout", "0")
    args = ["analyze", "--counts", str(merged), "--model", model, "--min-count", "3", "--quiet"]
    # --holdout left at its default: not a flag this command was given, so no word about it
    assert main(args + ["-o", str(tmp_path / "plain")]) == 0
    notes = _report(tmp_path / "plain")["notes"]
    assert not any("--holdout and --seed" in n or "left unused" in n for n in notes), notes
    assert "the shards were counted without a holdout (--holdout 0), so there is no held-out curve; count them with --holdout FRACTION for one" in notes
    # given, and not what the shards were counted with: said, with what to do
    assert main(args + ["-o", str(tmp_path / "given"), "--holdout", "0.2"]) == 0
    notes = _report(tmp_path / "given")["notes"]
    assert (
        "--holdout 0.2 is left unused: the held-out documents were set apart when the shards were counted (--holdout 0, "
        "--seed 0), and --holdout and --seed do not change them here; count the shards again to change them"
    ) in notes
