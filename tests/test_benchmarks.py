"""The GPU benchmark scripts run end to end on CPU with tiny shapes (their --smoke path).

A GPU is lent to only some sessions, so these scripts must not rot between them: here they prepare the
real tokenizer (the embedded model's, extended by the sample corpus's top candidates) and run every side
that RESULTS.md reports, on a tiny random Llama, as they would on the GPU machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), "TRANSFORMERS_VERBOSITY": "error"}
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=540)


@pytest.fixture(scope="module")
def gpu_tokenizer(smollm2_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gpu") / "gpu-tokenizer"
    run = _run("gpu_train.py", "--prepare", "--top", "40", "--tokenizer", str(folder))
    assert run.returncode == 0, run.stderr[-2000:]
    assert (folder / "base" / "tokenizer.json").is_file() and (folder / "ext" / "tokenizer.json").is_file()
    return folder


def test_gpu_train_smoke_runs_every_reported_side(gpu_tokenizer, tmp_path):
    sides = ["vocabx", "vocabx-active", "recipe"]
    run = _run("gpu_train.py", "--smoke", "--sides", ",".join(sides), "--tokenizer", str(gpu_tokenizer), "--out", str(tmp_path))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    summary = json.loads((tmp_path / "gpu_train.json").read_text())
    assert [r["side"] for r in summary["results"]] == sides
    for result in summary["results"]:
        assert "error" not in result and result["tokens_per_second"] > 0
    ratios = summary["ratios"]["tiny"]
    assert ratios["tokens_per_second"] > 0 and ratios["tokens_per_second_active_over_sparse_rows"] > 0


def test_gpu_fit_smoke(gpu_tokenizer, tmp_path):
    run = _run("gpu_fit.py", "--smoke", "--tokenizer", str(gpu_tokenizer), "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    (result,) = json.loads((tmp_path / "gpu_fit.json").read_text())
    assert result["shape"] == "tiny" and result["new_rows"] > 0 and result["tokens_per_second"] > 0


def test_gpu_scripts_name_the_missing_tokenizer(tmp_path):
    for script in ("gpu_train.py", "gpu_fit.py"):
        run = _run(script, "--smoke", "--tokenizer", str(tmp_path / "absent"), "--out", str(tmp_path / "out"))
        assert run.returncode == 2 and "--prepare" in run.stderr, (script, run.stderr)


def test_logit_shift_matches_scoring_shifted_logits():
    """bench_logit_shift.py's one-pass figure for a shift equals the cross-entropy of logits actually shifted."""
    import math

    import torch

    sys.path.insert(0, str(BENCH))
    try:
        from bench_logit_shift import kind_masks, logit_terms, shifted_bpb
    finally:
        sys.path.remove(str(BENCH))
    torch.manual_seed(0)
    rows, positions = 28, 40  # ids 20-25 new, 26-27 padding rows (in the softmax, never shifted)
    kind_of = {20: "phrase", 21: "phrase", 22: "word", 23: "subword", 24: "phrase", 25: "word"}
    logits = torch.randn(positions, rows) * 3
    targets = torch.randint(0, rows, (positions,)).tolist()
    targets[:4] = [20, 22, 23, 3]  # every kind is a target somewhere
    terms = logit_terms(logits, targets, kind_of, kind_masks(kind_of, rows))
    terms["bytes"] = 100
    for shift in ([0.0, 0.0, 0.0], [0.7, 0.7, 0.7], [1.5, -0.5, 0.25]):
        moved = logits.clone()
        for i, kind in kind_of.items():
            moved[:, i] -= shift[("phrase", "word", "subword").index(kind)]
        nll = torch.nn.functional.cross_entropy(moved, torch.tensor(targets), reduction="sum").item()
        assert shifted_bpb(terms, shift) == pytest.approx(nll / 100 / math.log(2), rel=1e-5)
    assert shifted_bpb(terms, [0.7] * 3) != pytest.approx(shifted_bpb(terms, [0.0] * 3), rel=1e-5)


def test_gpu_quality_parts_fit_two_calls_and_reassemble_to_the_gguf(smollm2_dir, tmp_path, monkeypatch):
    """gpu_quality.py sends the embedded model's GGUF in two parts, each under one device call's limit
    beside the working tree and (with the first) the corpora; the GPU machine rebuilds it byte for byte,
    refuses a stale part by its checksum, and converts what it rebuilt."""
    import hashlib

    sys.path.insert(0, str(BENCH))
    try:
        import gpu_quality
    finally:
        sys.path.remove(str(BENCH))
    from vocabx import models

    corpora = tmp_path / "shared"
    for rel in gpu_quality.CORPORA:
        (corpora / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpora / rel).write_text(json.dumps({"text": "Signs and symptoms of the disease."}) + "\n")
    tree = 3_000_000
    manifest = gpu_quality.prepare(tmp_path / "build", corpora, wheel=False, tree=tree)
    gguf = models._gguf_path(models.EMBEDDED["smollm2-135m"])
    assert sum(manifest["parts"]) == gguf.stat().st_size == manifest["bytes"] and min(manifest["parts"]) > 0
    assert max(manifest["call_bytes"]) <= gpu_quality.CALL_LIMIT, manifest
    carried = tmp_path / "build" / "gq-1" / "corpora"
    assert sorted(str(p.relative_to(carried)) for p in carried.rglob("*.gz")) == sorted(f"{c}.gz" for c in gpu_quality.CORPORA)

    converted: list[str] = []

    def convert(model, path, out):  # the real conversion is ensure_embedded's, tested with the model itself
        converted.append(hashlib.sha256(Path(path).read_bytes()).hexdigest())

    monkeypatch.setattr(models, "_convert_gguf", convert)
    monkeypatch.setenv("VOCABX_HOME", str(tmp_path / "home"))
    target = gpu_quality.assemble(tmp_path / "build", tmp_path / "work")
    assert converted == [manifest["sha256"]] and (target / models._MARKER).is_file()

    # a part from another preparation is caught before anything is converted
    monkeypatch.setenv("VOCABX_HOME", str(tmp_path / "home2"))
    part = tmp_path / "build" / "gq-2" / "gguf.part"
    stale = part.read_bytes()
    part.write_bytes(stale[:-1] + bytes([stale[-1] ^ 0xFF]))
    with pytest.raises(SystemExit, match="sha256"):
        gpu_quality.assemble(tmp_path / "build", tmp_path / "work")
    assert converted == [manifest["sha256"]]


def test_lora_pair_trains_lora_with_the_runs_budget_and_scores_the_same_documents(tiny_base, tmp_path):
    """bench_adapt_lora.lora_pair (the `lora` side of every adapt figure, and of gpu_quality.py's steps):
    LoRA on the base model with the run's steps, batch, block, rate and rank, scored on the run's own
    test and general documents beside the run's adapted model."""
    from vocabx import read_corpus
    from vocabx.adapt import adapt, budget_of

    sys.path.insert(0, str(BENCH))
    try:
        from bench_adapt_lora import lora_pair, training_settings
    finally:
        sys.path.remove(str(BENCH))
    docs = [t[:1500] for _, t in zip(range(80), read_corpus(ROOT / "corpora" / "medical"))]
    general = ["We walked to the market, bought some bread and cheese, and went home."] * 4
    run = tmp_path / "run"
    metrics = adapt(docs[:60], run, model=str(tiny_base), budget="quick", eval_texts=docs[60:], general=general, log=lambda line: None)
    settings = training_settings(run)
    quick = budget_of("quick")
    assert settings == {"max_steps": quick.max_steps, "batch_size": quick.batch_size, "block_size": quick.block_size, "lr": quick.lr, "lora_r": 4, "lora_alpha": 8.0}
    pair = lora_pair(run, docs[:60], docs[60:], general, tmp_path / "lora")
    assert set(pair["corpora"]) == {"domain test", "general"}
    test = pair["corpora"]["domain test"]
    assert test["adapted_bpb"] == metrics["corpora"]["domain test"]["adapted"]["bpb"]  # the run's own figure
    assert test["base_bpb"] == metrics["corpora"]["domain test"]["base"]["bpb"]  # the same documents
    assert test["adapted_vs_lora"] == pytest.approx(test["adapted_bpb"] / test["lora_bpb"] - 1, abs=1e-5)
    trained = json.loads((tmp_path / "lora" / "vocabx_train.json").read_text())
    assert trained["config"]["mode"] == "lora" and {k: trained["config"][k] for k in settings} == settings
    reused = lora_pair(run, docs[:60], docs[60:], general, tmp_path / "lora", reuse=True)
    assert reused["corpora"] == pair["corpora"] and reused["lora_train"] == {"reused": str(tmp_path / "lora")}


def test_gpu_quality_sh_names_a_part_that_did_not_arrive(tmp_path):
    """On a fresh machine (the last went back between the two calls) the script names the missing part
    and what to carry, in one line, before anything else runs."""
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "gpu_quality.sh").write_text((BENCH / "gpu_quality.sh").read_text())
    (tmp_path / "build" / "gq-1").mkdir(parents=True)
    (tmp_path / "build" / "gq-1" / "manifest.json").write_text("{}")
    run = subprocess.run(["bash", "benchmarks/gpu_quality.sh"], cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "OUT": str(tmp_path / "out")})
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        "gpu_quality.sh: build/gq-2/gguf.part is not on this machine (a fresh one, if the last went back between the calls): "
        "carry build/gq-1 in one call, then build/gq-2 in the next"
    ]
