"""Every example runs, here on a tiny model built in the test (the real model is the examples' default)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_medical_quickstart_and_the_datasets_pipeline(tiny_base, tmp_path):
    result = _load("medical_quickstart").main(["--model", str(tiny_base), "--out", str(tmp_path / "med"), "--top", "80"])
    assert result["added"] > 0 and result["token_reduction"] > 0
    assert result["fit"]["steps"] == 20 and result["fit"]["loss_end"] < result["fit"]["loss_start"]
    assert (result["docs_longer"], result["roundtrip_failures"], result["in_word_matches"]) == (0, 0, 0)
    packed = _load("datasets_pipeline").main(["--extended", str(tmp_path / "med" / "extended"), "--block-size", "64", "--num-proc", "1"])
    assert packed["blocks"] > 0 and packed["new_token_share"] > 0
    none = _load("datasets_pipeline").main(["--extended", str(tmp_path / "med" / "extended"), "--block-size", "1000000", "--num-proc", "1"])
    assert none["blocks"] == 0 and none["new_token_share"] == 0.0


def test_legal_contracts(tiny_base, tmp_path):
    result = _load("legal_contracts").main(["--model", str(tiny_base), "--out", str(tmp_path / "legal"), "--top", "80"])
    assert result["after"] < result["before"]
    assert json.loads((tmp_path / "legal" / "vocabx.json").read_text())["schema"] == "vocabx.extension/1"


def test_train_and_load_three_ways_give_the_same_logits(tiny_base, tmp_path):
    differences = _load("train_and_load").main(["--model", str(tiny_base), "--out", str(tmp_path / "runs"), "--top", "40", "--steps", "2", "--block-size", "64"])
    assert set(differences) == {"load_adapted", "plain PEFT", "merged"}
    assert max(differences.values()) < 1e-4
