"""analyze -> extend -> check end to end through ``vocabx.cli.main`` on the project's sample corpus with smollm2-135m.

The report and the extension are made once per module; each test reads them or runs one more command.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from vocabx.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LEGAL = str(ROOT / "corpora" / "legal")
MODEL = "smollm2-135m"
REPORT_FILES = {"report.json", "candidates.tsv", "report.md", "report.html", "savings_curve.png", "fragmentation.png"}
ANALYZE_KEYS = {
    "report",
    "candidates",
    "kinds",
    "corpus_tokens",
    "recommended_n",
    "recommended",
    "savings_at_max",
    "holdout_savings_at_max",
    "notes",
}
CANDIDATE_KEYS = {"token", "surface", "kind", "count", "doc_count", "base_pieces", "tokens_saved", "score"}
EXTEND_KEYS = {"added", "dropped", "vocab_size", "init"}
CHECK_KEYS = {
    "docs",
    "base_tokens",
    "extended_tokens",
    "token_reduction",
    "docs_longer",
    "roundtrip_failures",
    "in_word_matches",
    "new_token_adoption",
}


def cli(*args: str) -> tuple[int, str, str]:
    """Run ``vocabx ARGS --quiet``; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--quiet"])
    return code, out.getvalue(), err.getvalue()


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def work(tmp_path_factory, smollm2_dir) -> Path:
    return tmp_path_factory.mktemp("stages")


@pytest.fixture(scope="module")
def analyzed(work) -> tuple[Path, dict]:
    out = work / "report"
    code, stdout, stderr = cli("analyze", LEGAL, "--model", MODEL, "-o", str(out), "--json")
    assert code == 0, stderr
    return out, last_json(stdout)


@pytest.fixture(scope="module")
def extended(work, analyzed) -> tuple[Path, dict]:
    report, _ = analyzed
    out = work / "ext"
    code, stdout, stderr = cli("extend", "--model", MODEL, "--report", str(report), "--top", "300", "--tokenizer-only", "-o", str(out), "--json")
    assert code == 0, stderr
    return out, last_json(stdout)


def test_analyze_writes_the_report_files_and_prints_the_summary(analyzed):
    out, summary = analyzed
    assert {p.name for p in out.iterdir()} == REPORT_FILES
    # The documented keys; more are welcome, so the test does not pin the exact set.
    assert ANALYZE_KEYS <= set(summary)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["schema"] == "vocabx.report/1"
    assert summary["candidates"] == len(report["candidates"]) > 300
    assert summary["kinds"] == {k: sum(c["kind"] == k for c in report["candidates"]) for k in ("word", "subword", "phrase")}
    assert all(summary["kinds"][k] > 0 for k in ("word", "subword", "phrase"))
    assert all(CANDIDATE_KEYS <= set(c) for c in report["candidates"])
    assert report["holdout"]["docs"] > 0 and report["holdout_curve"][-1] == summary["holdout_savings_at_max"]
    assert report["savings_curve"][-1] == summary["savings_at_max"]
    assert report["model"]["spec"] == MODEL


def test_analyze_refuses_a_non_empty_output_without_overwrite(analyzed):
    out, _ = analyzed
    before = (out / "report.json").read_bytes()
    code, stdout, stderr = cli("analyze", LEGAL, "--model", MODEL, "-o", str(out))
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vocabx: error:") and "--overwrite" in lines[0]
    assert "Traceback" not in stderr
    assert (out / "report.json").read_bytes() == before


def test_extend_tokenizer_only_writes_the_tokenizer_folder(extended):
    out, result = extended
    names = {p.name for p in out.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "vocabx.json", "added.tsv"} <= names
    assert not any(n.endswith((".safetensors", ".bin")) for n in names)
    assert EXTEND_KEYS <= set(result)
    assert result["added"] + result["dropped"] == 300 and result["added"] > 250
    assert result["vocab_size"] == 49152 + result["added"]
    assert result["init"] == "none"  # (no rows were written, so none were initialized)
    manifest = json.loads((out / "vocabx.json").read_text(encoding="utf-8"))
    assert manifest["schema"] == "vocabx.extension/1"
    assert [a["id"] for a in manifest["added"]] == list(range(49152, 49152 + result["added"]))
    assert len(manifest["dropped"]) == result["dropped"] and all(d["reason"] for d in manifest["dropped"])


def test_check_passes_on_the_sample_corpus(extended):
    out, _ = extended
    code, stdout, stderr = cli("check", "--base", MODEL, "--extended", str(out), LEGAL, "--json")
    assert code == 0, stderr
    result = last_json(stdout)
    assert CHECK_KEYS <= set(result)
    assert result["docs"] == 300
    assert (result["docs_longer"], result["roundtrip_failures"], result["in_word_matches"]) == (0, 0, 0)
    assert result["extended_tokens"] < result["base_tokens"]
    assert result["token_reduction"] == round(1 - result["extended_tokens"] / result["base_tokens"], 6) > 0.15
    assert result["new_token_adoption"] > 0


def test_check_exits_1_on_a_broken_extension(work, smollm2_tokenizer):
    # The usual recipe: an added token matched before the pre-tokenizer, inside ' Agreement'.
    broken = work / "broken"
    smollm2_tokenizer.add_tokens([" Agree"])
    smollm2_tokenizer.save_pretrained(broken)
    new_id = smollm2_tokenizer.convert_tokens_to_ids(" Agree")
    manifest = {
        "schema": "vocabx.extension/1",
        "base_model": {"spec": MODEL, "vocab_size": 49152},
        "added": [{"id": new_id, "token": " Agree", "surface": " Agree", "kind": "word"}],
        "dropped": [],
    }
    (broken / "vocabx.json").write_text(json.dumps(manifest), encoding="utf-8")
    code, stdout, stderr = cli("check", "--base", MODEL, "--extended", str(broken), LEGAL, "--json")
    assert code == 1, stderr
    result = last_json(stdout)
    assert result["in_word_matches"] > 0 and result["docs_longer"] > 0


@pytest.fixture(scope="module")
def sharded(work) -> dict:
    """analyze --shard 0/2 and 1/2, merge-counts, analyze --counts: the resulting report."""
    shards = work / "shards"
    for i in range(2):
        code, _, stderr = cli("analyze", LEGAL, "--model", MODEL, "-o", str(shards), "--shard", f"{i}/2")
        assert code == 0, stderr
    shards = shards.rename(work / "shards-moved")  # (the counts find their held-out files beside them)
    merged = shards / "merged.counts.json.gz"
    # what `vocabx merge-counts shards/*.counts.json.gz` passes: the held-out counts beside the shards too
    files = sorted(map(str, shards.glob("*.counts.json.gz")))
    held_files = [str(shards / f"holdout-{i}-of-2.counts.json.gz") for i in range(2)]
    assert len(files) == 4 and set(held_files) < set(files)
    code, stdout, stderr = cli("merge-counts", *files, "-o", str(merged), "--json")
    assert code == 0, stderr
    summary = last_json(stdout)
    assert summary["docs"] + summary["holdout_docs"] == 300 and summary["files"] == 2 and summary["skipped"] == held_files
    renamed = work / "elsewhere" / "renamed.counts.json.gz"  # (a held-out file known by its meta alone)
    renamed.parent.mkdir()
    renamed.write_bytes(Path(held_files[0]).read_bytes())
    shard_files = [f for f in files if f not in held_files]
    code, stdout, stderr = cli("merge-counts", *shard_files, str(renamed), "-o", str(work / "elsewhere" / "m.counts.json.gz"), "--json")
    assert code == 0 and last_json(stdout)["skipped"] == [str(renamed)] and last_json(stdout)["docs"] == summary["docs"], stderr
    code, _, stderr = cli("merge-counts", *held_files, "-o", str(shards / "held-only.counts.json.gz"))
    assert code == 2 and "only held-out counts; pass the counts-I-of-N files" in stderr
    # the same glob again: now it also finds the merge and its held-out file, which must not count twice
    again = sorted(map(str, shards.glob("*.counts.json.gz")))
    code, stdout, stderr = cli("merge-counts", *again, "-o", str(merged), "--json")
    assert code == 0, stderr
    assert (last_json(stdout)["docs"], last_json(stdout)["holdout_docs"], last_json(stdout)["files"]) == (summary["docs"], summary["holdout_docs"], 2)
    code, _, stderr = cli("merge-counts", *again, "-o", str(shards / "other.counts.json.gz"))
    assert code == 2 and "is a merge of counts-0-of-2.counts.json.gz, counts-1-of-2.counts.json.gz, which are given too" in stderr
    out = work / "from-counts"
    code, _, stderr = cli("analyze", "--counts", str(shards / "merged.holdout.counts.json.gz"), "--model", MODEL, "-o", str(out))
    assert code == 2 and "holds held-out documents, not a corpus's counts" in stderr
    # shards that would count twice, or were counted otherwise, do not merge
    (work / "shards-copy").mkdir()
    for name in ("counts-0-of-2.counts.json.gz", "holdout-0-of-2.counts.json.gz"):
        (work / "shards-copy" / name).write_bytes((shards / name).read_bytes())
    code, _, stderr = cli("merge-counts", *shard_files, shard_files[0].replace("shards-moved", "shards-copy"), "-o", str(work / "twice.counts.json.gz"))
    assert code == 2 and "shard 0/2 is given more than once (from different folders?)" in stderr
    code, _, stderr = cli("analyze", LEGAL, "--model", MODEL, "-o", str(work / "other-split"), "--shard", "0/3", "--holdout", "0")
    assert code == 0, stderr
    code, _, stderr = cli("merge-counts", shard_files[1], str(work / "other-split" / "counts-0-of-3.counts.json.gz"), "-o", str(work / "mixed.counts.json.gz"))
    assert code == 2 and "counts files were made with different --holdout" in stderr
    code, _, stderr = cli("merge-counts", *shard_files, "-o", str(shards))
    assert code == 2 and "is a folder; merge-counts writes one file" in stderr
    code, _, stderr = cli("analyze", LEGAL, "--model", MODEL, "-o", str(merged), "--shard", "0/2")
    assert code == 2 and "is a file; --shard writes its counts files into a folder" in stderr
    # the held-out split is the one made when counting, whatever --holdout and --seed say here
    code, _, stderr = cli("analyze", "--counts", str(merged), "--model", MODEL, "-o", str(out), "--seed", "7")
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["settings"]["seed"] == 0 and any("do not change them here" in n for n in report["notes"])
    assert f"vocabx analyze --counts {merged}" in (out / "report.md").read_text(encoding="utf-8")
    code, _, stderr = cli("analyze", "--counts", str(merged), "--model", MODEL, "-o", str(out), "--overwrite")
    assert code == 0, stderr
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_sharded_counts_merge_to_the_same_candidates(analyzed, sharded):
    report, _ = analyzed
    direct = json.loads((report / "report.json").read_text(encoding="utf-8"))

    def key(c):
        return (c["token"], c["kind"], c["count"], c["doc_count"], c["tokens_saved"])

    assert sharded["corpus"]["tokens"] == direct["corpus"]["tokens"]
    assert sharded["holdout"]["docs"] == direct["holdout"]["docs"]
    # Equal savings may rank in another order: the document order differs between the two runs.
    assert sorted(map(key, sharded["candidates"])) == sorted(map(key, direct["candidates"]))


def test_sharded_counts_give_the_same_held_out_curve(analyzed, sharded):
    report, _ = analyzed
    direct = json.loads((report / "report.json").read_text(encoding="utf-8"))
    assert sharded["holdout_curve"][-1] == direct["holdout_curve"][-1]


def test_extend_refuses_a_report_made_for_another_model(work, analyzed, tiny_tokenizers, tiny_lm):
    report, _ = analyzed
    tiny = work / "tiny-model"
    tiny_tokenizers["byte_bpe"].save_pretrained(tiny)
    tiny_lm.save_pretrained(tiny)
    code, _, stderr = cli("extend", "--model", str(tiny), "--report", str(report), "-o", str(work / "tiny-ext"))
    assert code == 2
    line = stderr.strip()
    assert "\n" not in line and MODEL in line and str(tiny) in line
    assert not (work / "tiny-ext").exists()
