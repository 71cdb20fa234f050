"""Shared fixtures: tiny tokenizers of every family, tiny models, the real embedded model, shared corpora.

Expensive objects are built once per session; tests that change them get a deep copy.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

import tinymodels

ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPORA = Path(os.environ.get("VOCABX_SHARED_CORPORA", ROOT.parent / "shared" / "corpora"))


@pytest.fixture(scope="session")
def _tiny_tokenizers() -> dict:
    return {family: tinymodels.make_tokenizer(family) for family in tinymodels.FAMILIES}


@pytest.fixture(params=tinymodels.FAMILIES)
def family_tokenizer(request, _tiny_tokenizers):
    """A tiny tokenizer of each family in turn (a fresh copy per test)."""
    return copy.deepcopy(_tiny_tokenizers[request.param])


@pytest.fixture
def tiny_tokenizers(_tiny_tokenizers) -> dict:
    """All tiny tokenizers by family (fresh copies)."""
    return copy.deepcopy(_tiny_tokenizers)


@pytest.fixture
def tiny_lm(_tiny_tokenizers):
    """A tiny random Llama whose vocabulary matches the byte-level BPE tiny tokenizer."""
    return tinymodels.make_causal_lm(len(_tiny_tokenizers["byte_bpe"]))


@pytest.fixture
def tiny_base(tmp_path, _tiny_tokenizers) -> Path:
    """A model folder (byte-level BPE tokenizer + tiny random Llama) that vocabx loads like any model."""
    folder = tmp_path / "base"
    tok = _tiny_tokenizers["byte_bpe"]
    tok.save_pretrained(folder)
    tinymodels.make_causal_lm(len(tok)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The embedded default model, converted once into the vocabx cache."""
    from vocabx.models import resolve_model

    return Path(resolve_model("smollm2-135m"))


@pytest.fixture(scope="session")
def _smollm2_tokenizer(smollm2_dir):
    from vocabx.models import load_tokenizer

    return load_tokenizer("smollm2-135m")


@pytest.fixture
def smollm2_tokenizer(_smollm2_tokenizer):
    return copy.deepcopy(_smollm2_tokenizer)


@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    if not SHARED_CORPORA.is_dir():
        pytest.skip(f"real corpora not found at {SHARED_CORPORA} (set VOCABX_SHARED_CORPORA to point at them)")
    return SHARED_CORPORA
