"""The model to train: which rows are new, and the PEFT model around them.

:func:`_rows_of` finds the new rows (from the model folder's ``vocabx.json`` or ``new_token_ids``);
:func:`_wrap_peft` puts LoRA on the blocks' linear layers and the new rows behind PEFT's trainable
tokens (tying kept), or leaves every weight trainable in ``full`` mode.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vocabx.errors import VocabxError
from vocabx.train.config import MARKER, TrainConfig, format_ids, parse_ids


# ---------------------------------------------------------------------------------------------------
# Which rows are new


@dataclass
class _Rows:
    """The embedding rows of the model being trained and where each comes from."""

    n_base: int  # rows below this are the base model's own
    embedding_rows: int
    vocab_size: int
    hidden_size: int
    tied: bool
    new_ids: list[int]  # the added tokens (manifest or --new-token-ids)
    trainable_ids: list[int]  # rows trained as trainable tokens
    stored_ids: list[int]  # rows >= n_base the adapter does not hold: written to extension_rows
    base_model: str | None
    manifest: dict | None

    def as_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "manifest"}
        d["init"] = (self.manifest or {}).get("init")
        return d


def _rows_of(model_spec: str | None, model: Any, tokenizer: Any, config: TrainConfig) -> _Rows:
    from vocabx.extend import read_manifest
    from vocabx.initialize import embedding_rows, is_tied

    manifest = None
    if model_spec is not None and (Path(model_spec) / "vocabx.json").is_file():
        manifest = read_manifest(model_spec)
    rows = embedding_rows(model)
    if len(tokenizer) > rows:
        raise VocabxError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's embedding matrix has {rows} rows; "
            "pass the model folder written by vocabx extend, whose model and tokenizer belong together"
        )
    if config.new_token_ids is not None:
        new_ids = parse_ids(config.new_token_ids)
        bad = [i for i in new_ids if i >= rows]
        if bad:
            added = sorted(int(a["id"]) for a in (manifest or {}).get("added", []))
            hint = f", such as the {len(added)} tokens the model's vocabx.json adds: {format_ids(added)}" if added else ""
            raise VocabxError(
                f"--new-token-ids {format_ids(bad)} {'is' if len(bad) == 1 else 'are'} outside the embedding matrix of {rows} rows "
                f"(ids 0-{rows - 1}); give ids below {rows}{hint}"
            )
    elif manifest is not None:
        new_ids = sorted(int(a["id"]) for a in manifest.get("added", []))
    else:
        new_ids = []
    if config.mode in ("tokens", "lora+tokens") and not new_ids:
        if model_spec is None:  # (a model object, from the Python API: no folder, so no vocabx.json)
            raise VocabxError(
                f"mode {config.mode!r} trains the new tokens' rows, but a model object has no vocabx.json naming them; "
                "pass the Extension that vocabx.extend returned as the model, or new_token_ids=extension.new_ids, or mode='lora'"
            )
        where = f"{model_spec!r} has no vocabx.json" if manifest is None else f"{model_spec}/vocabx.json adds no tokens"
        raise VocabxError(
            f"--mode {config.mode} trains the new tokens' rows, but {where}; pass a folder written by vocabx extend, "
            "give the rows with --new-token-ids, or use --mode lora"
        )
    # The first row the base model lacks: the manifest's first added token even when --new-token-ids
    # trains only some of them (the others are then stored, so the base model can still be rebuilt).
    extension_ids = new_ids + [int(a["id"]) for a in (manifest or {}).get("added", [])]
    n_base = min(extension_ids) if extension_ids else rows
    trainable = new_ids if config.mode in ("tokens", "lora+tokens") else []
    stored = [] if config.mode == "full" else sorted(set(range(n_base, rows)) - set(trainable))
    return _Rows(
        n_base=n_base,
        embedding_rows=rows,
        vocab_size=len(tokenizer),
        hidden_size=int(model.get_input_embeddings().weight.shape[1]),
        tied=is_tied(model),
        new_ids=new_ids,
        trainable_ids=trainable,
        stored_ids=stored,
        base_model=((manifest or {}).get("base_model") or {}).get("spec") if manifest else model_spec,
        manifest=manifest,
    )


def _check_not_adapter(spec: str) -> None:
    """Refuse an adapter folder as ``--model``: transformers would load it onto the model its
    adapter_config.json names, and PEFT would then stack a second adapter on the first."""
    folder = Path(spec)
    if not (folder / "adapter_config.json").is_file():
        return
    record = _json_or_none(folder / MARKER)
    if isinstance(record, dict):
        what, trained_on, loader = "an adapter folder written by vocabx train (LoRA and new rows only)", record.get("model"), "vocabx.load_adapted"
    else:
        adapter = _json_or_none(folder / "adapter_config.json")
        trained_on = adapter.get("base_model_name_or_path") if isinstance(adapter, dict) else None
        what, loader = "a PEFT adapter folder", "peft.PeftModel.from_pretrained"
    model = f" ({trained_on})" if trained_on else ""
    raise VocabxError(f"--model {spec!r} is {what}, not a model; pass the extended folder it was trained on{model}, or load it with {loader}")


def _json_or_none(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _split_pieces(rows: _Rows, tokenizer: Any) -> dict[int, list[int]]:
    """--split-new: each new token's id -> the ids of the base pieces its manifest lists."""
    if rows.manifest is None:
        raise VocabxError("--split-new writes new tokens with their base pieces, which the model folder's vocabx.json lists, but there is none; pass a folder written by vocabx extend or leave --split-new at 0")
    pieces: dict[int, list[int]] = {}
    new = set(rows.new_ids)
    for added in rows.manifest.get("added", []):
        if int(added["id"]) not in new or not added.get("pieces"):
            continue
        ids = tokenizer.convert_tokens_to_ids(list(added["pieces"]))
        if any(i is None or i == tokenizer.unk_token_id or i >= rows.n_base for i in ids):
            raise VocabxError(f"vocabx.json lists pieces {added['pieces']!r} for {added['token']!r} that are not base tokens of this tokenizer; rewrite the folder with vocabx extend or leave --split-new at 0")
        pieces[int(added["id"])] = ids
    return pieces


def _context_length(model: Any) -> int | None:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


# ---------------------------------------------------------------------------------------------------
# The model to train


def _module_name(model: Any, module: Any) -> str:
    return next(name for name, m in model.named_modules() if m is module).rsplit(".", 1)[-1]


def _wrap_peft(model: Any, rows: _Rows, config: TrainConfig) -> Any:
    """Put LoRA and/or trainable tokens on ``model`` as the mode asks; ``full`` trains the model as is."""
    if config.mode == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import LoraConfig, TrainableTokensConfig, get_peft_model

    emb_name = _module_name(model, model.get_input_embeddings())
    out = model.get_output_embeddings()
    ids = list(rows.trainable_ids)
    targets = [emb_name] if rows.tied or out is None else [emb_name, _module_name(model, out)]
    if config.mode == "tokens":
        peft_config: Any = TrainableTokensConfig(token_indices=ids, target_modules=targets)
    else:
        lora_targets: Any = config.lora_targets.strip()
        if lora_targets != "all-linear":
            lora_targets = [t.strip() for t in lora_targets.split(",") if t.strip()]
        token_indices: Any = None
        if ids:
            token_indices = ids if len(targets) == 1 else {name: ids for name in targets}
        peft_config = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=lora_targets,
            trainable_token_indices=token_indices,
            task_type="CAUSAL_LM",
        )
    with warnings.catch_warnings():
        # PEFT warns that it cannot tie adapters on a tied model; its trainable-tokens layer on the
        # output matrix does follow the input one, which _fused_parts checks.
        warnings.filterwarnings("ignore", message=".*no implementation exists to tie the adapters.*")
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        try:
            peft_model = get_peft_model(model, peft_config)
        except ValueError as exc:
            raise VocabxError(f"cannot put LoRA on this model with --lora-targets {config.lora_targets!r}: {str(exc).splitlines()[0]}") from exc
    # Trained weights in fp32 even when the frozen ones are stored in bf16.
    for p in peft_model.parameters():
        if p.requires_grad and p.dtype != _torch().float32:
            p.data = p.data.float()
    return peft_model


def _torch() -> Any:
    import torch

    return torch


def _token_layer(module: Any) -> Any:
    """PEFT's trainable-tokens layer of an embedding or output module, or None."""
    from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

    if isinstance(module, TrainableTokensLayer):
        return module
    layer = getattr(module, "token_adapter", None)
    return layer if isinstance(layer, TrainableTokensLayer) else None
