"""The adapter folder and loading it back: export, merge, :func:`read_run`, :func:`load_adapted`.

The export writes only the LoRA weights and the new rows (``save_embedding_layers=False``), the rows
the adapter does not hold, the tokenizer, the config and the metrics with their readable twin;
``merge`` also writes a merged standard model. :func:`load_adapted` rebuilds the extended model from
its base (resize, rows, adapter), giving the logits training ended with.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from vocabx.errors import VocabxError, read_json
from vocabx.train.config import MARKER, ROWS_FILE, SCHEMA, TrainConfig
from vocabx.train.model import _Rows, _token_layer, _torch


def _export(out: Path, model: Any, tokenizer: Any, rows: _Rows, config: TrainConfig, spec: str | None) -> int:
    """Write the adapter (or, in full mode, the model), tokenizer, stored rows and config; return the weights' bytes."""
    from vocabx.outputs import _public

    staging = out / ".export.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        if config.mode == "full":
            model.save_pretrained(staging)
            weights = sum(p.stat().st_size for p in staging.glob("*.safetensors"))
        else:
            aliases = _tied_aliases(model)
            state = {k: v for k, v in model.state_dict().items() if k not in aliases} if aliases else None
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*(tie|vocab|config file).*")
                model.save_pretrained(staging, save_embedding_layers=False, state_dict=state)
            adapter_config = staging / "adapter_config.json"
            data = json.loads(adapter_config.read_text(encoding="utf-8"))
            data["base_model_name_or_path"] = spec
            adapter_config.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            if config.adapter_dtype == "bf16":
                _to_bf16(staging / "adapter_model.safetensors")
            weights = (staging / "adapter_model.safetensors").stat().st_size
            if rows.stored_ids:
                _save_rows(model, rows, staging / ROWS_FILE, spec)
        tokenizer.save_pretrained(staging)
        _write_config(staging, config)
        _public(staging)
        for path in staging.iterdir():
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return int(weights)


def _write_config(folder: Path, config: TrainConfig) -> None:
    """``train_config.yaml``: the run's settings, reusable with ``--config`` (to --resume the run, too)."""
    import yaml

    path = folder / "train_config.yaml"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("# vocabx train settings of this run; reusable with --config\n" + yaml.safe_dump(config.as_dict(), sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)


def _tied_aliases(model: Any) -> set[str]:
    """State-dict keys under which PEFT's trainable tokens (``--mode tokens``) list the new rows a second
    time: its layer on a tied output matrix takes the input layer's parameters as its own attributes, so
    they are its submodule too, and the export would write a copy of the rows under the output's name.
    (LoRA's trainable tokens skip a tied layer themselves.) PEFT rebuilds the tie on load; only its
    missing-keys warning names the alias, which :func:`load_adapted` expects."""
    from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

    return {
        f"{name}.trainable_tokens_delta.{adapter}"
        for name, module in model.named_modules()
        if isinstance(module, TrainableTokensLayer) and getattr(module, "tied_adapter", None) is not None  # (getattr: other PEFT versions may name it otherwise)
        for adapter in module.trainable_tokens_delta
    }


def _to_bf16(path: Path) -> None:
    """Rewrite a safetensors file with its float32 tensors in bfloat16 (they were rounded to it already)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    torch = _torch()
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    save_file({k: v.to(torch.bfloat16) if v.dtype == torch.float32 else v for k, v in tensors.items()}, str(path), metadata=metadata)


def _save_rows(model: Any, rows: _Rows, path: Path, spec: str | None = None) -> None:
    from safetensors.torch import save_file

    torch = _torch()
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    ids = torch.tensor(rows.stored_ids, dtype=torch.long)
    tensors = {"ids": ids}
    sides = [("input", lm.get_input_embeddings())]
    out = lm.get_output_embeddings()
    if not rows.tied and out is not None:
        sides.append(("output", out))
    for key, module in sides:
        layer = _token_layer(module)
        weight = (layer.get_base_layer() if layer is not None else module).weight
        kept = weight.detach()[ids.to(weight.device)].cpu().contiguous()
        # Frozen weights trained in bf16 hold these rows rounded; the model folder has them exactly,
        # and plain PEFT on that folder uses them as they are there.
        tensors[key] = _checkpoint_rows(spec, weight, kept, ids) if weight.dtype in (torch.bfloat16, torch.float16) else kept
    save_file(tensors, str(path), metadata={"schema": "vocabx.rows/1"})


def _checkpoint_rows(spec: str | None, weight: Any, kept: Any, ids: Any) -> Any:
    """Rows ``ids`` of the model folder's float32 matrix of ``weight``'s shape whose rows, rounded to
    ``weight``'s dtype, are ``kept``; ``kept`` itself where the folder has no such matrix."""
    if spec is None or not Path(spec).is_dir():
        return kept
    from safetensors import safe_open

    shape = list(weight.shape)
    first, last = int(ids.min()), int(ids.max()) + 1
    for file in sorted(Path(spec).glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as handle:
                for name in handle.keys():
                    piece = handle.get_slice(name)
                    if piece.get_shape() != shape or piece.get_dtype() != "F32":
                        continue
                    rows = piece[first:last][ids - first]
                    if _torch().equal(rows.to(kept.dtype), kept):
                        return rows.contiguous()
        except (OSError, ValueError, RuntimeError):
            continue
    return kept


def _write_merged(out: Path, spec: str | None, model: Any, tokenizer: Any, record: dict) -> None:
    """A standard model folder with the adapter merged in, computed in fp32 and checked to stay tied."""
    from vocabx.initialize import is_tied
    from vocabx.outputs import staged_dir

    torch = _torch()
    if spec is not None:
        merged = _rebuild(record, spec, out, dtype=torch.float32, merge=True)
    else:
        merged = copy.deepcopy(model).float().merge_and_unload()
    if merged.config.tie_word_embeddings and not is_tied(merged):
        raise VocabxError("merging untied the input and output embeddings; report this model class to vocabx")
    # (in config.json, which any loader keeps: load_adapted then refuses to put this adapter on it again)
    merged.config.vocabx_merged = {"adapter": str(out), "adapter_sha256": _adapter_digest(out)}
    with staged_dir(out / "merged", overwrite=True, marker="config.json", what="merged model") as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def _adapter_digest(adapter_dir: str | os.PathLike) -> str | None:
    """The SHA-256 of an adapter folder's weights, which name the adapter a merged model holds."""
    import hashlib

    path = Path(adapter_dir) / "adapter_model.safetensors"
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _summary_md(record: dict, history: list[dict]) -> str:
    m = record.get("metrics", {})
    lines = [
        f"# vocabx training run ({record['schema']})",
        "",
        f"- model: `{record['model']}`, mode `{record['mode']}`, {record['trainable_parameters']:,} trained parameters",
        f"- data: {record['data']['train_docs']:,} training documents in {record['data']['blocks']:,} blocks of {record['data']['block_size']} tokens; {record['data']['eval_docs']:,} eval document{'' if record['data']['eval_docs'] == 1 else 's'}",
        f"- steps: {m.get('steps')}, tokens: {m.get('tokens', 0):,}, {m.get('tokens_per_second')} tokens/s on {record['processes']} {record['device']} process(es), precision {record['mixed_precision']}",
        f"- final train loss (last 10 steps): {_fmt(m.get('train_loss'))}; eval loss {_fmt(m.get('eval_loss'))}, bits per byte {_fmt(m.get('eval_bpb'))}",
        f"- adapter weights: {record.get('adapter_bytes', 0) / 1e6:.2f} MB",
        "",
        "| step | eval loss | eval bits per byte |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {r['step']} | {r['eval_loss']:.4f} | {r['eval_bpb']:.4f} |" for r in history if r.get("type") == "eval"]
    lines += ["", "Settings: `train_config.yaml`; every step: `log.jsonl`."]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# ---------------------------------------------------------------------------------------------------
# Loading


def read_run(adapter_dir: str | os.PathLike) -> dict:
    """The ``vocabx_train.json`` of a finished run, checked."""
    path = Path(adapter_dir) / MARKER
    if not Path(adapter_dir).exists():
        raise VocabxError(f"adapter folder {os.fspath(adapter_dir)!r} does not exist; pass the -o folder of a vocabx train run")
    if not path.is_file():
        raise VocabxError(f"{os.fspath(adapter_dir)!r} has no {MARKER}; pass a folder written by vocabx train")
    record = read_json(path, "train the adapter again with vocabx train")
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise VocabxError(f"{path}: schema {record.get('schema') if isinstance(record, dict) else None!r}, expected {SCHEMA!r}")
    if record.get("status") != "done":
        raise VocabxError(f"the training run in {os.fspath(adapter_dir)!r} did not finish; continue it with vocabx train --resume")
    return record


def load_adapted(base: Any, adapter_dir: str | os.PathLike, *, dtype: Any = None, merge: bool = False, trust_remote_code: bool = False) -> Any:
    """Rebuild the trained model: ``base`` (the base model the extension was made from, or the extended
    folder itself) resized to the extended matrix, its extension rows restored, and the adapter loaded.

    Returns a PEFT model in eval mode (with ``merge``, a plain transformers model with the adapter
    merged in). The tokenizer is ``AutoTokenizer.from_pretrained(adapter_dir)``. A ``full``-mode run's
    folder is a whole model and is loaded as it is.

    >>> model = vocabx.load_adapted("smollm2-135m", "adapter")      # doctest: +SKIP
    >>> tokenizer = transformers.AutoTokenizer.from_pretrained("adapter")  # doctest: +SKIP
    """
    return _rebuild(read_run(adapter_dir), base, adapter_dir, dtype=dtype, merge=merge, trust_remote_code=trust_remote_code)


def _named(base: Any) -> str:
    """``base`` as an error message names it: its path, or its class for a model object (not its repr)."""
    return repr(os.fspath(base)) if isinstance(base, (str, os.PathLike)) else f"the given {type(base).__name__}"


def _which_base(base_model: str | None, extended: str | None) -> str:
    """What to pass instead, naming the models the run's record knows."""
    if base_model and extended and base_model != extended:
        return f"pass the base model ({base_model}) or the extended folder ({extended}) the adapter was trained on"
    if extended:
        return f"pass the extended folder the adapter was trained on ({extended}) or its base model"
    return "pass the base model or the extended folder the adapter was trained on"


def _rebuild(record: dict, base: Any, adapter_dir: str | os.PathLike, *, dtype: Any, merge: bool, trust_remote_code: bool = False) -> Any:
    from vocabx.initialize import embedding_rows, is_tied, resize_for_new_tokens
    from vocabx.models import load_model

    if record["mode"] == "full":
        return load_model(os.fspath(adapter_dir), dtype=dtype).eval()
    ext = record["extension"]
    bases = _which_base(ext.get("base_model"), record.get("model"))
    if isinstance(base, (str, os.PathLike)) and (Path(base) / "adapter_config.json").is_file():
        raise VocabxError(f"{_named(base)} is an adapter folder written by vocabx train, not a model; {bases}")
    model = base if not isinstance(base, (str, os.PathLike)) else load_model(os.fspath(base), dtype=dtype, trust_remote_code=trust_remote_code)
    merged = getattr(model.config, "vocabx_merged", None)  # (the adapter is hashed only for a merged model)
    if (isinstance(merged, dict) and merged.get("adapter_sha256") is not None and merged.get("adapter_sha256") == _adapter_digest(adapter_dir)) or (
        isinstance(base, (str, os.PathLike)) and Path(base).resolve() == (Path(adapter_dir) / "merged").resolve()
    ):
        raise VocabxError(
            f"{_named(base)} is a merged model: the adapter in {os.fspath(adapter_dir)!r} is already in its weights, and loading it again would apply it twice; "
            f"load the merged model as it is (AutoModelForCausalLM.from_pretrained), or {bases}"
        )
    hidden = model.get_input_embeddings().weight.shape[1]
    rows = embedding_rows(model)
    if hidden != ext["hidden_size"] or rows > ext["embedding_rows"] or rows < ext["n_base"]:
        raise VocabxError(
            f"the adapter in {os.fspath(adapter_dir)!r} was trained on a model with {ext['embedding_rows']} embedding rows of size {ext['hidden_size']}, "
            f"but {_named(base)} has {rows} rows of size {hidden}; pass its base model ({ext.get('base_model') or record.get('model')}) or the extended folder"
        )
    tied = is_tied(model)
    resize_for_new_tokens(model, ext["embedding_rows"])
    rows_file = Path(adapter_dir) / ROWS_FILE
    if rows_file.is_file():
        from safetensors.torch import load_file

        stored = load_file(str(rows_file))
        torch = _torch()
        with torch.no_grad():
            w_in = model.get_input_embeddings().weight
            ids = stored["ids"].to(w_in.device)
            w_in[ids] = stored["input"].to(w_in)
            if "output" in stored and not tied:
                w_out = model.get_output_embeddings().weight
                w_out[ids] = stored["output"].to(w_out)
    from peft import PeftModel

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=".*(no implementation exists to tie|is_gradient_checkpointing).*")
        adapted = PeftModel.from_pretrained(model, os.fspath(adapter_dir))
    aliases = _tied_aliases(adapted)
    for warning in caught:
        if not _only_missing(str(warning.message), aliases):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if merge:
        return adapted.merge_and_unload().eval()
    return adapted.eval()


def _only_missing(message: str, keys: set[str]) -> bool:
    """Whether ``message`` is PEFT's missing-keys warning naming only some of ``keys`` (the tied rows that
    the export leaves out: PEFT shares them with the input layer's, which the adapter holds)."""
    import ast
    import re

    found = re.fullmatch(r"Found missing adapter keys while loading the checkpoint: (\[.*\])\.", message.strip())
    if not found or not keys:
        return False
    try:
        missing = ast.literal_eval(found.group(1))
    except (ValueError, SyntaxError):
        return False
    return isinstance(missing, list) and set(missing) <= keys
