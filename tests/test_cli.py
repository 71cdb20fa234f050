"""The command line: instant help, the stats contract, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vocabx.cli import main

ROOT = Path(__file__).resolve().parents[1]
STATS_KEYS = {"docs", "bytes", "words", "tokens", "tokens_per_word", "bytes_per_token"}


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vocabx", *args], capture_output=True, text=True, cwd=ROOT, **kwargs)


@pytest.fixture
def tiny_model_dir(tmp_path, tiny_tokenizers, tiny_lm):
    folder = tmp_path / "tiny-model"
    tiny_tokenizers["byte_bpe"].save_pretrained(folder)
    tiny_lm.save_pretrained(folder)
    return folder


@pytest.fixture
def corpus_dir(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.jsonl").write_text(
        json.dumps({"text": "The patient was admitted for chest pain."}) + "\n"
        + json.dumps({"text": "This Agreement shall be governed by the laws."}) + "\n"
    )
    (folder / "b.txt").write_text("Signs and symptoms include fever.")
    return folder


def test_help_is_instant_and_imports_no_heavy_library():
    code = "import sys, vocabx.cli; vocabx.cli.build_parser(); print(sorted(m for m in ('torch', 'transformers', 'datasets', 'tokenizers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    result = _run("--help")
    assert result.returncode == 0 and "stats" in result.stdout


def test_import_vocabx_is_lazy():
    code = "import sys, vocabx; assert callable(vocabx.read_corpus); print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("vocabx")
    result = subprocess.run([str(script), "stats", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--text-field" in result.stdout and "--json" in result.stdout


def test_stats_json_has_the_contract_keys(capsys, tiny_model_dir, corpus_dir, tiny_tokenizers):
    assert main(["stats", str(corpus_dir), "--model", str(tiny_model_dir), "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert STATS_KEYS <= set(result)
    assert result["corpus"] == [str(corpus_dir)] and result["model"] == str(tiny_model_dir)  # (as the table's rows)
    tok = tiny_tokenizers["byte_bpe"]
    texts = ["The patient was admitted for chest pain.", "This Agreement shall be governed by the laws.", "Signs and symptoms include fever."]
    assert result["docs"] == 3
    assert result["tokens"] == sum(len(tok.encode(t, add_special_tokens=False)) for t in texts)
    assert result["bytes"] == sum(len(t.encode()) for t in texts)


class _Exited(Exception):
    pass


def test_a_launched_process_leaves_through_os_exit_with_the_commands_code(monkeypatch, capsys, tiny_model_dir, corpus_dir, tmp_path):
    # Under `accelerate launch` (WORLD_SIZE > 1) the command's exit skips the interpreter's shutdown, where
    # gloo's threads sometimes aborted a finished run; run alone, main() returns as usual.
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise _Exited

    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(_Exited):
        main(["stats", str(corpus_dir), "--model", str(tiny_model_dir), "--json"])
    with pytest.raises(_Exited):
        main(["stats", str(tmp_path / "missing"), "--model", str(tiny_model_dir)])
    assert codes == [0, 2]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["docs"] == 3  # output flushed before leaving
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert main(["stats", str(corpus_dir), "--model", str(tiny_model_dir), "--json"]) == 0 and codes == [0, 2]


def test_stats_table_is_readable(capsys, tiny_model_dir, corpus_dir):
    assert main(["stats", str(corpus_dir), "--model", str(tiny_model_dir)]) == 0
    out = capsys.readouterr().out
    assert "tokens per word" in out and "docs             3" in out


def test_errors_are_one_line_without_traceback(tmp_path):
    result = _run("stats", str(tmp_path / "missing.txt"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"vocabx: error: corpus path '{tmp_path / 'missing.txt'}' does not exist; pass a file, folder, glob, hf:NAME or -"
    ]
    assert result.stdout == ""
    # with --json the last stdout line is a JSON object on failure too (the stderr line stays)
    as_json = _run("stats", str(tmp_path / "missing.txt"), "--json")
    assert as_json.returncode == 2 and as_json.stderr == result.stderr
    assert json.loads(as_json.stdout.strip().splitlines()[-1]) == {
        "error": f"corpus path '{tmp_path / 'missing.txt'}' does not exist; pass a file, folder, glob, hf:NAME or -", "exit_code": 2,
    }


@pytest.mark.parametrize(
    "command,flag",
    [
        (["analyze", "{corpus}", "--model", "{model}", "-o", "{out}", "--reference", "{missing}"], "--reference"),
        (["evaluate", "--base", "{model}", "--adapted", "{model}", "{corpus}", "--general", "{missing}"], "--general"),
        (["adapt", "{corpus}", "--model", "{model}", "-o", "{out}", "--eval", "{missing}"], "--eval"),
    ],
)
def test_a_missing_corpus_given_with_a_flag_names_the_flag(capsys, tmp_path, corpus_dir, tiny_model_dir, command, flag):
    # (before, "corpus path 'x' does not exist" alone: which of the command's corpora was it?)
    missing = tmp_path / "nosuch"
    values = {"corpus": str(corpus_dir), "model": str(tiny_model_dir), "out": str(tmp_path / "out"), "missing": str(missing)}
    assert main([part.format(**values) for part in command]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"vocabx: error: {flag}: corpus path '{missing}' does not exist; pass a file, folder, glob, hf:NAME or -"


def test_unknown_model_is_one_line(tmp_path, corpus_dir):
    result = _run("stats", str(corpus_dir), "--model", "gpt-17")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "vocabx: error: unknown model 'gpt-17': pass an embedded model (smollm2-135m), a local model folder, "
        "or a Hugging Face hub id such as org/name (a hub model known by its name alone, such as gpt2, goes by "
        "its org/name id here: openai-community/gpt2)"
    ]


@pytest.mark.parametrize("holdout", ["0.7", "-0.1"])
def test_analyze_refuses_a_holdout_out_of_range_in_one_line_before_reading(capsys, tmp_path, corpus_dir, tiny_model_dir, holdout):
    out = tmp_path / "report"
    capsys.readouterr()  # (what the fixtures wrote)
    assert main(["analyze", str(corpus_dir), "--model", str(tiny_model_dir), "--holdout", holdout, "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"vocabx: error: --holdout must be a share of the documents in [0, 0.5], 0 for none, got {float(holdout)!r} "
        "(kept out of selection for the held-out curve)"
    ]
    assert not out.exists()


def test_debug_shows_the_traceback(corpus_dir):
    result = _run("stats", str(corpus_dir), "--model", "gpt-17", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_warnings_are_one_line_each(tmp_path, tiny_model_dir):
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 text")
    result = _run("stats", str(tmp_path / "bad.txt"), "--model", str(tiny_model_dir), "--json")
    assert result.returncode == 0, result.stderr
    assert f"vocabx: warning: {tmp_path / 'bad.txt'}: 1 invalid UTF-8 byte sequences replaced by U+FFFD" in result.stderr.splitlines()
    assert json.loads(result.stdout.strip().splitlines()[-1])["skipped"]["replaced_chars"] == 1


def test_stdin_corpus(tiny_model_dir):
    result = _run("stats", "-", "--model", str(tiny_model_dir), "--json", input="one doc\nanother doc\n")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["docs"] == 2


def test_usage_errors_are_one_line_naming_the_help(tmp_path):
    result = _run("stats", str(tmp_path), "--no-such-flag")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["vocabx: error: unrecognized arguments: --no-such-flag (see vocabx stats --help)"]
    result = _run("train", str(tmp_path), "-o", str(tmp_path / "out"), "--mode", "bogus")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'bogus'" in result.stderr and "(see vocabx train --help)" in result.stderr
    result = _run("--json", "stats", str(tmp_path))  # (a command's flag before the command)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "vocabx: error: unrecognized arguments: --json; a command's flags go after it (vocabx stats --json ...) (see vocabx --help)"
    ]


def test_an_unexpected_failure_exits_3_not_as_a_broken_guarantee(capsys, monkeypatch, corpus_dir, tiny_model_dir):
    import vocabx.stats

    def broken(*args, **kwargs):
        raise RuntimeError("something vocabx did not foresee\nsecond line")

    monkeypatch.setattr(vocabx.stats, "corpus_stats", broken)
    capsys.readouterr()  # (what the fixtures printed)
    assert main(["stats", str(corpus_dir), "--model", str(tiny_model_dir)]) == 3
    assert capsys.readouterr().err.strip().splitlines() == [
        "vocabx: error: RuntimeError: something vocabx did not foresee (rerun with --debug for the traceback)"
    ]
    assert main(["stats", str(corpus_dir), "--model", str(tiny_model_dir), "--json"]) == 3
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"error": "RuntimeError: something vocabx did not foresee", "exit_code": 3}


def test_a_reader_that_leaves_early_gets_no_error(corpus_dir, tiny_model_dir):
    # `vocabx stats ... | head -0`: stdout closed before the table is written (and buffered, as in a
    # shell, so that the write fails when it is flushed)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vocabx", "stats", str(corpus_dir), "--model", str(tiny_model_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env,
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and "Error" not in err, err


def test_an_unreadable_manifest_is_bad_input_naming_the_file(tmp_path, corpus_dir):
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "vocabx.json").write_text("{not json")
    result = _run("check", "--extended", str(ext), str(corpus_dir))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"vocabx: error: {ext / 'vocabx.json'} is not valid JSON (line 1, column 2: Expecting property name enclosed in double quotes); "
        "write the folder again with vocabx extend"
    ]


def test_no_command_prints_help():
    result = _run()
    assert result.returncode == 2 and "usage: vocabx" in result.stdout
    # (the contract's one error line on stderr, as for any bad input)
    assert result.stderr.strip().splitlines() == ["vocabx: error: name a command, such as vocabx adapt CORPUS -o RUN_DIR (listed above)"]


def test_adapt_names_an_empty_eval_corpus(capsys, tiny_model_dir, corpus_dir, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"text": " "}) + "\n")
    code = main(["adapt", str(corpus_dir), "--model", str(tiny_model_dir), "--eval", str(empty), "-o", str(tmp_path / "run")])
    assert code == 2
    assert f"{empty} has no text" in capsys.readouterr().err  # the reader names the file before any stage runs
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag, value", [("--max-docs", "0"), ("--block-size", "0"), ("--batch-size", "-1"), ("--prompts", "-1"), ("--max-chars", "x")])
def test_evaluate_names_a_bad_count_before_loading_anything(capsys, flag, value):
    with pytest.raises(SystemExit) as exited:
        main(["evaluate", "corpora/legal", "--adapted", "/nonexistent-folder", flag, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: must be an integer of at least" in err and ("got 'x'" if value == "x" else f"got {int(value)}") in err


def test_json_output_writes_an_unmeasured_figure_as_null(capsys):
    import argparse

    from vocabx.cli import emit

    emit(argparse.Namespace(json=True), {"bpb": float("nan"), "rows": [float("inf"), 1.5]}, "text")

    def strict(name):
        raise ValueError(f"{name} is not JSON")

    assert json.loads(capsys.readouterr().out, parse_constant=strict) == {"bpb": None, "rows": [None, 1.5]}


def test_adapt_usage_names_the_budgets(capsys):
    with pytest.raises(SystemExit):
        main(["adapt", "--help"])
    assert "--budget {quick,standard,full}" in capsys.readouterr().out


def test_check_shows_a_documents_excerpt_on_one_line(capsys, monkeypatch, corpus_dir):
    import importlib

    result = {"docs": 1, "base_tokens": 10, "extended_tokens": 11, "token_reduction": -0.1, "docs_longer": 1, "roundtrip_failures": 0,
              "in_word_matches": 0, "new_token_adoption": 0.0, "added_used": 0, "added": 1, "unreachable": 0, "ok": False,
              "examples": {"docs_longer": "first line\nsecond line\n\n" + "x " * 200}}
    monkeypatch.setattr(importlib.import_module("vocabx.check"), "check_corpus", lambda *a, **k: result)
    monkeypatch.setattr(importlib.import_module("vocabx.extend"), "read_manifest", lambda folder: {})
    monkeypatch.setattr(importlib.import_module("vocabx.extend"), "load_extended_tokenizer", lambda folder: None)
    monkeypatch.setattr(importlib.import_module("vocabx.models"), "load_tokenizer", lambda *a, **k: [])
    assert main(["check", "--base", "m", "--extended", "ext", str(corpus_dir), "--quiet"]) == 1
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("e.g. docs longer"))
    assert "first line second line x x" in row and row.endswith("...") and len(row) < 200


def test_adapt_passes_max_token_chars_to_the_analysis(monkeypatch, corpus_dir, tmp_path):
    import importlib

    seen = {}

    def stop(texts, run_dir, **options):
        seen.update(options)
        raise VocabxError("stopped: only what the command passes on is looked at")

    from vocabx.errors import VocabxError

    monkeypatch.setattr(importlib.import_module("vocabx.adapt"), "adapt", stop)
    assert main(["adapt", str(corpus_dir), "-o", str(tmp_path / "run"), "--max-token-chars", "10", "--quiet"]) == 2
    assert seen["max_token_chars"] == 10
