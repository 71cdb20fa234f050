"""vocabx: adapt a pretrained language model's vocabulary to a domain.

The public API is imported lazily, so ``import vocabx`` stays fast: torch and transformers load on the
first call that needs them.

>>> import vocabx
>>> tok = vocabx.load_tokenizer("smollm2-135m")                     # doctest: +SKIP
>>> vocabx.corpus_stats(vocabx.read_corpus("corpora/medical"), tok)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "VocabxError": "vocabx.errors",
    "VocabxWarning": "vocabx.errors",
    "read_corpus": "vocabx.corpus",
    "CorpusReport": "vocabx.corpus",
    "TextStream": "vocabx.corpus",
    "load_tokenizer": "vocabx.models",
    "load_model": "vocabx.models",
    "resolve_model": "vocabx.models",
    "corpus_stats": "vocabx.stats",
    "CorpusStats": "vocabx.stats",
    "analyze": "vocabx.analyze",
    "SelectSettings": "vocabx.analyze",
    "write_report": "vocabx.report",
    "read_report": "vocabx.report",
    "extend": "vocabx.extend",
    "extend_tokenizer": "vocabx.extend",
    "save_extension": "vocabx.extend",
    "load_extension": "vocabx.extend",
    "tokens_from_report": "vocabx.extend",
    "tokens_from_terms": "vocabx.extend",
    "load_extended_tokenizer": "vocabx.extend",
    "fit_extension": "vocabx.fit",
    "FitSettings": "vocabx.fit",
    "check_corpus": "vocabx.check",
    "train": "vocabx.train",
    "TrainConfig": "vocabx.train",
    "TrainResult": "vocabx.train",
    "load_adapted": "vocabx.train",
    "pack_dataset": "vocabx.data",
    "pack_texts": "vocabx.data",
}

_EXPORTS["evaluate"] = "vocabx.evaluate"
_EXPORTS["Side"] = "vocabx.evaluate"
_EXPORTS["load_side"] = "vocabx.evaluate"

__all__ = sorted(_EXPORTS) + ["__version__"]

# The stage functions share their module's name (vocabx.analyze is a module and a function). Importing
# such a module later would rebind the package attribute to the module, so the functions are bound now;
# their modules import only the standard library at load time.
from vocabx.analyze import analyze  # noqa: E402
from vocabx.evaluate import evaluate  # noqa: E402
from vocabx.extend import extend  # noqa: E402
from vocabx.train import train  # noqa: E402


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vocabx' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
