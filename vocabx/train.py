"""Train an extended model on a domain corpus: LoRA plus only the new embedding rows, with Accelerate.

Strategies (``mode``):

- ``tokens``: only the new tokens' embedding rows train;
- ``lora+tokens`` (default): LoRA on every linear layer of the blocks, plus the new rows;
- ``lora``: LoRA only; the new rows keep their initialization (the baseline);
- ``full``: every weight trains, the export is a whole model.

The new rows train through PEFT's trainable tokens (``trainable_token_indices`` on the input embedding;
a tied output matrix follows it, an untied one gets its own rows), never ``modules_to_save``, which
would copy, train and save both 49,152-row matrices. They have their own learning rate
(``embedding_lr``) and can train alone for the first ``embedding_warmup_steps`` steps. By default
(``rows_update="sparse"``) a step moves only the rows of tokens its batches hold, without momentum:
plain AdamW over all rows lets each softmax push every unseen row down at full step size, and held-out
text that uses other new tokens gets worse (benchmarks/RESULTS.md, "Sparse row updates").
``rows_update="active"`` also moves the rows of tokens the model predicted where they were not due, at
least ``row_mass`` of probability per 1,000 positions of the step: those are pushed down where they
fire, while rows that take next to nothing stay where they are.

The training step does not run PEFT's embedding layers as they are: those rebuild the whole matrix on
every forward and compute the full vocabulary x hidden gradient of the output matrix, to keep a few
hundred rows. vocabx computes the same loss from the same parameters row-sparsely: input rows by a
lookup with the new rows swapped in, and the output layer fused with the cross-entropy in chunks of
positions, which forms each chunk's logits once, computes the gradients in the same pass and never
holds the whole ``tokens x vocabulary`` logits. At startup the two ways are compared on one batch; a
model where they differ (an embedding scale, logit soft-capping) trains the plain way.

The loop: AdamW (fused on CUDA), cosine schedule with linear warmup, gradient accumulation, clipping,
bf16 autocast on GPU (frozen weights stored in bf16, trained ones in fp32) and fp32 on CPU (where
``mixed_precision="bf16"`` does the same, and is over twice as fast on CPUs with AVX512-BF16 or AMX);
optional gradient checkpointing and ``torch.compile``. Data order is a pure function of the seed and the step
(a fresh permutation of the blocks per epoch, each process taking its slice), so a resumed run reads
exactly the batches an uninterrupted one would. Checkpoints are Accelerate states holding only the
trained weights, written into a temporary folder and renamed, the last ``keep_checkpoints`` kept.

The output folder (the adapter) holds ``adapter_model.safetensors`` (LoRA and the new rows only), the
tokenizer, ``extension_rows.safetensors`` (rows of the extended matrix the adapter does not hold, such
as padding rows, so that :func:`load_adapted` can rebuild the model from its base), ``vocabx_train.json``
(schema ``vocabx.train/1``: config, data, metrics) with its readable twin ``train.md``,
``train_config.yaml`` (reusable with ``--config``), ``log.jsonl`` and ``checkpoints/``.

What it leaves out: quantized (QLoRA) training, FSDP/DeepSpeed sharding, and evaluation beyond the
held-out loss and bits per byte (``vocabx evaluate``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import math
import os
import re
import shutil
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable

from vocabx.errors import VocabxError, VocabxWarning

SCHEMA = "vocabx.train/1"
MODES = ("tokens", "lora+tokens", "lora", "full")
MARKER = "vocabx_train.json"
ROWS_FILE = "extension_rows.safetensors"
log = logging.getLogger("vocabx")


def _opt(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


ROWS_UPDATES = ("sparse", "active", "dense")


@dataclass
class TrainConfig:
    """Everything that shapes a training run. Each field is a ``--flag`` of ``vocabx train`` and a key of
    its ``--config`` YAML file (dashes or underscores)."""

    mode: str = _opt("lora+tokens", "what trains: tokens, lora+tokens, lora or full", choices=MODES)
    max_steps: int | None = _opt(None, "optimizer steps (default: one pass over the training blocks)", type=int)
    batch_size: int | None = _opt(None, "blocks per micro-batch on each process (default: 8 on a GPU, 2 on CPU)", type=int)
    grad_accum: int = _opt(1, "micro-batches per optimizer step")
    block_size: int = _opt(512, "tokens per training block")
    lr: float = _opt(2e-4, "peak learning rate of LoRA (of every weight in full mode)")
    embedding_lr: float = _opt(1e-3, "peak learning rate of the new embedding rows")
    weight_decay: float = _opt(0.0, "AdamW weight decay of LoRA (never applied to the rows)")
    warmup_steps: int | None = _opt(None, "linear warmup steps (default: 5%% of the steps)", type=int)
    min_lr_ratio: float = _opt(0.1, "the cosine schedule ends at this fraction of the peak")
    max_grad_norm: float = _opt(1.0, "clip the gradient norm to this (0: no clipping)")
    lora_r: int = _opt(4, "LoRA rank")
    lora_alpha: float = _opt(8.0, "LoRA alpha (the update is scaled by alpha / r)")
    lora_dropout: float = _opt(0.0, "dropout on LoRA's input (PEFT's default, 0: none)")
    lora_targets: str = _opt("all-linear", "layers LoRA adapts: all-linear (every linear layer of the blocks) or names such as q_proj,v_proj")
    embedding_warmup_steps: int = _opt(0, "train only the new rows for this many steps, then add LoRA")
    rows_update: str = _opt("sparse", "which new rows a step moves: sparse (only those of tokens in the step's batch, without momentum), active (those, and the rows whose tokens took at least --row-mass of the probability over the step's positions) or dense (all, plain AdamW)", choices=ROWS_UPDATES)
    row_mass: float = _opt(0.02, "with --rows-update active: the probability per 1,000 positions of a step, summed over them, from which a new token absent from the batch has its row moved")
    replay_fraction: float = _opt(0.25, "with --replay: the share of training blocks drawn from the replay text, spread evenly over the run")
    split_new: float = _opt(0.0, "the share of the new tokens' occurrences in the training blocks written with their base pieces instead, drawn once from --seed (segmentation dropout: the model keeps reading and predicting the pieces in the domain's contexts); 0: off")
    new_token_ids: str | None = _opt(None, "rows to train as new tokens, as 49152-49200,49301 (default: the ids in the model's vocabx.json)", type=str)
    eval_every: int = _opt(200, "evaluate every N steps (0: only at the end)")
    eval_fraction: float = _opt(0.05, "share of documents held out for evaluation")
    max_eval_docs: int = _opt(200, "at most this many held-out documents")
    eval_batch_size: int = _opt(8, "windows per evaluation batch")
    save_every: int = _opt(200, "save a checkpoint every N steps and at the end (0: never)")
    keep_checkpoints: int = _opt(2, "checkpoints kept (the newest)")
    seed: int = _opt(0, "seed of the split, the data order and the initialization")
    gradient_checkpointing: bool = _opt(False, "recompute activations in the backward pass (less memory, about 30%% slower)")
    compile: str = _opt("auto", "torch.compile each transformer block: auto (on a CUDA GPU with Triton; 1.5-2.2x the tokens/s of eager on an H200 after ~20 s of compiling), yes or no", choices=("auto", "yes", "no"))
    mixed_precision: str = _opt("auto", "auto (bf16 on a GPU that has it, else fp32), bf16 (also on CPU: fast where it has AVX512-BF16 or AMX) or no", choices=("auto", "bf16", "no"))
    fused_loss: bool = _opt(True, "row-sparse embeddings and chunked fused output+loss (off: the plain forward)")
    adapter_dtype: str = _opt("bf16", "precision of the saved adapter: bf16 (half the size; the returned model is rounded to match) or fp32", choices=("bf16", "fp32"))
    merge: bool = _opt(False, "also write a merged standard model into OUTPUT/merged")
    num_proc: int | None = _opt(None, "processes for tokenizing (default: 1 below 20,000 documents)", type=int)
    trackers: str = _opt("auto", "auto (TensorBoard when installed) or none", choices=("auto", "none"))

    def __post_init__(self) -> None:
        problems: list[str] = []

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                problems.append(f"{flag(name)} must be {what}, got {getattr(self, name)!r}")

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_num(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        need(self.mode in MODES, "mode", "one of " + ", ".join(MODES))
        for name in ("grad_accum", "block_size", "lora_r", "eval_batch_size", "keep_checkpoints"):
            need(is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "a positive int")
        need(is_int(self.block_size) and self.block_size >= 2 or not is_int(self.block_size), "block_size", "at least 2")
        for name in ("embedding_warmup_steps", "eval_every", "save_every", "seed", "max_eval_docs"):
            need(is_int(getattr(self, name)) and getattr(self, name) >= 0, name, "an int >= 0")
        for name in ("max_steps", "num_proc", "batch_size"):
            need(getattr(self, name) is None or is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "a positive int")
        need(self.warmup_steps is None or is_int(self.warmup_steps) and self.warmup_steps >= 0, "warmup_steps", "an int >= 0")
        for name in ("lr", "embedding_lr", "lora_alpha"):
            need(is_num(getattr(self, name)) and getattr(self, name) > 0, name, "a positive number")
        for name in ("weight_decay", "max_grad_norm"):
            need(is_num(getattr(self, name)) and getattr(self, name) >= 0, name, "a number >= 0")
        need(is_num(self.min_lr_ratio) and 0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "in [0, 1]")
        need(is_num(self.lora_dropout) and 0 <= self.lora_dropout < 1, "lora_dropout", "in [0, 1)")
        need(is_num(self.eval_fraction) and 0 <= self.eval_fraction < 1, "eval_fraction", "in [0, 1)")
        need(self.mixed_precision in ("auto", "bf16", "no"), "mixed_precision", "auto, bf16 or no")
        need(self.trackers in ("auto", "none"), "trackers", "auto or none")
        need(self.adapter_dtype in ("bf16", "fp32"), "adapter_dtype", "bf16 or fp32")
        need(self.rows_update in ROWS_UPDATES, "rows_update", "sparse, active or dense")
        need(is_num(self.row_mass) and self.row_mass > 0, "row_mass", "a positive number")
        need(is_num(self.replay_fraction) and 0 < self.replay_fraction < 1, "replay_fraction", "in (0, 1)")
        need(is_num(self.split_new) and 0 <= self.split_new < 1, "split_new", "in [0, 1)")
        need(isinstance(self.lora_targets, str) and bool(self.lora_targets.strip()), "lora_targets", "all-linear or a comma-separated list of layer names")
        if isinstance(self.compile, bool):  # YAML `compile: true` and the Python API's compile=True
            self.compile = "yes" if self.compile else "no"
        need(self.compile in ("auto", "yes", "no"), "compile", "auto, yes or no")
        for name in ("gradient_checkpointing", "fused_loss", "merge"):
            need(isinstance(getattr(self, name), bool), name, "true or false")
        if self.new_token_ids is not None:
            try:
                parse_ids(self.new_token_ids)
            except VocabxError as exc:
                problems.append(str(exc))
        if (
            is_int(self.embedding_warmup_steps) and self.embedding_warmup_steps
            and self.mode != "lora+tokens"
        ):
            problems.append(f"--embedding-warmup-steps needs --mode lora+tokens (it trains the rows first, then adds LoRA), got --mode {self.mode}")
        if (
            is_int(self.embedding_warmup_steps) and is_int(self.max_steps)
            and self.max_steps is not None and self.embedding_warmup_steps >= self.max_steps
        ):
            problems.append(f"--embedding-warmup-steps {self.embedding_warmup_steps} leaves no LoRA steps within --max-steps {self.max_steps}")
        if problems:
            raise VocabxError("; ".join(problems))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_file(cls, path: str | os.PathLike, **overrides: Any) -> "TrainConfig":
        """Read a YAML (or JSON) config; ``overrides`` (the command-line flags) win over it."""
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise VocabxError(f"cannot read --config {os.fspath(path)!r}: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise VocabxError(f"--config {os.fspath(path)!r} is not valid YAML: {str(exc).splitlines()[0]}") from exc
        if not isinstance(data, dict):
            raise VocabxError(f"--config {os.fspath(path)!r} must hold a mapping of settings, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        settings = {str(k).replace("-", "_"): v for k, v in data.items()}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise VocabxError(f"--config {os.fspath(path)!r}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return cls(**{**settings, **overrides})


def flag(name: str) -> str:
    """'max_steps' -> '--max-steps'"""
    return "--" + name.replace("_", "-")


def parse_ids(text: str) -> list[int]:
    """'49152-49154,49200' -> [49152, 49153, 49154, 49200]"""
    ids: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match or (match.group(2) and int(match.group(2)) < int(match.group(1))):
            raise VocabxError(f"--new-token-ids takes ids and ranges such as 49152-49200,49301, got {part!r}")
        start = int(match.group(1))
        ids.extend(range(start, int(match.group(2) or start) + 1))
    if not ids:
        raise VocabxError("--new-token-ids is empty; give ids such as 49152-49200")
    return sorted(set(ids))


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per :class:`TrainConfig` field; flags left out keep the --config or default value."""
    for f in fields(TrainConfig):
        meta = f.metadata
        default = f.default
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": f.name}
        shown = "" if default is None else f" (default {default})"
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
            shown = f" (default {'on' if default else 'off'})"
        else:
            kwargs["type"] = meta.get("type") or type(default)
            kwargs["metavar"] = {int: "N", float: "X"}.get(kwargs["type"], "TEXT")
            if "choices" in meta:
                kwargs["choices"] = meta["choices"]
                kwargs["metavar"] = "|".join(meta["choices"])
        parser.add_argument(flag(f.name), help=meta["help"] + shown, **kwargs)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config of a ``vocabx train`` command line: defaults < --config file < flags."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    if getattr(args, "config", None):
        return TrainConfig.from_file(args.config, **given)
    return TrainConfig(**given)


@dataclass
class TrainResult:
    """What a run produced. ``train_loss`` is the mean loss of the last 10 steps; ``tokens_per_second``
    counts the training tokens of all processes over this session's training time (no eval, no saving)."""

    output_dir: str
    mode: str
    steps: int
    train_loss: float | None
    eval_loss: float | None
    eval_bpb: float | None
    tokens: int
    tokens_per_second: float
    seconds: float
    trainable_parameters: int
    adapter_bytes: int
    merged_dir: str | None = None
    history: list[dict] = field(default_factory=list, repr=False)
    model: Any = field(default=None, repr=False)
    tokenizer: Any = field(default=None, repr=False)
    is_main_process: bool = True

    def as_dict(self) -> dict:
        keys = ("train_loss", "eval_loss", "eval_bpb", "steps", "tokens", "tokens_per_second", "seconds", "mode", "trainable_parameters", "adapter_bytes", "output_dir", "merged_dir")
        return {k: getattr(self, k) for k in keys}


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
            raise VocabxError(f"--new-token-ids {bad[0]} is outside the embedding matrix of {rows} rows")
    elif manifest is not None:
        new_ids = sorted(int(a["id"]) for a in manifest.get("added", []))
    else:
        new_ids = []
    if config.mode in ("tokens", "lora+tokens") and not new_ids:
        where = f"{model_spec!r} has no vocabx.json" if manifest is None else f"{model_spec}/vocabx.json adds no tokens"
        raise VocabxError(
            f"--mode {config.mode} trains the new tokens' rows, but {where}; pass a folder written by vocabx extend, "
            "give the rows with --new-token-ids, or use --mode lora"
        )
    n_base = min(new_ids) if new_ids else rows
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


@dataclass
class _Side:
    """One embedding matrix as the fused step sees it: the frozen (or full-mode) weight and the new rows."""

    weight: Any
    delta: Any = None  # (n_new, hidden) parameter, or None
    ids: Any = None  # LongTensor of the rows delta replaces
    lookup: Any = None  # LongTensor (rows,): position in delta, or -1


def _side(module: Any) -> _Side | None:
    torch = _torch()
    layer = _token_layer(module)
    if layer is None:
        weight = getattr(module, "weight", None)
        if weight is None or getattr(module, "bias", None) is not None:
            return None
        return _Side(weight)
    source = layer.tied_adapter or layer
    base = layer.get_base_layer()
    if getattr(base, "bias", None) is not None:
        return None
    name = layer.active_adapters[0]
    ids = torch.tensor(source.token_indices[name], dtype=torch.long, device=base.weight.device)
    lookup = torch.full((base.weight.shape[0],), -1, dtype=torch.long, device=base.weight.device)
    lookup[ids] = torch.arange(len(ids), device=base.weight.device)
    return _Side(base.weight, source.trainable_tokens_delta[name], ids, lookup)


def _make_fused_function() -> Any:
    torch = _torch()

    class FusedLinearCrossEntropy(torch.autograd.Function):
        """Summed cross-entropy of ``hidden @ W.T`` (W with rows ``ids`` replaced by ``delta``), by chunks.

        Each chunk's logits exist only inside the loop; the gradients with respect to ``hidden``,
        ``delta`` and (full mode) ``weight`` are computed in the same pass and handed back in backward.
        """

        @staticmethod
        def forward(ctx, hidden, weight, delta, labels, ids, chunk_rows, mass):  # type: ignore[override]
            need_h, need_w, need_d = ctx.needs_input_grad[:3]
            with torch.autocast(hidden.device.type, enabled=False):
                grad_h = torch.empty_like(hidden) if need_h else None
                grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
                grad_d = torch.zeros(delta.shape, dtype=torch.float32, device=delta.device) if need_d else None
                fix = (delta - weight.index_select(0, ids)) if delta is not None and need_h else None
                total = torch.zeros((), dtype=torch.float32, device=hidden.device)
                for start in range(0, hidden.shape[0], chunk_rows):
                    h = hidden[start : start + chunk_rows]
                    y = labels[start : start + chunk_rows]
                    logits = (h @ weight.T).float()
                    if delta is not None:
                        logits[:, ids] = (h @ delta.T).float()
                    valid = y != -100
                    target = torch.where(valid, y, 0)
                    lse = torch.logsumexp(logits, dim=1)
                    picked = logits.gather(1, target[:, None]).squeeze(1)
                    total += ((lse - picked) * valid).sum()
                    if not (need_h or need_w or need_d or mass is not None):
                        continue
                    # d(sum of losses)/d(logits) = softmax - one_hot, zero on ignored positions
                    g = logits.sub_(lse[:, None]).exp_()
                    g.scatter_add_(1, target[:, None], -torch.ones_like(picked)[:, None])
                    g.mul_(valid[:, None])
                    g_new = g[:, ids] if delta is not None else None
                    if mass is not None:  # the new rows' probability less their targets (added back below)
                        mass += g_new.sum(0)
                    g = g.to(hidden.dtype)
                    g_new = g_new.to(hidden.dtype) if g_new is not None else None
                    if need_h:
                        dh = g @ weight
                        if fix is not None:
                            dh += g_new @ fix
                        grad_h[start : start + chunk_rows] = dh
                    if need_w:
                        grad_w += (g.T @ h).float()
                    if need_d:
                        grad_d += (g_new.T @ h).float()
                if need_w and delta is not None:
                    grad_w.index_fill_(0, ids, 0.0)  # those rows of W are replaced by delta
                if mass is not None:  # each new token's probability summed over the valid positions:
                    # the loop summed softmax - one_hot; one count of the targets per step puts the one_hot
                    # back (fewer operations per chunk, and no wait on the GPU)
                    valid = labels != -100
                    hits = torch.zeros(weight.shape[0], dtype=torch.float32, device=hidden.device)
                    hits.index_add_(0, torch.where(valid, labels, 0), valid.float())
                    mass += hits[ids]
            ctx.save_for_backward(grad_h, grad_w, grad_d)
            ctx.dtypes = (hidden.dtype, weight.dtype, None if delta is None else delta.dtype)
            return total

        @staticmethod
        def backward(ctx, grad_total):  # type: ignore[override]
            grads = []
            for g, dtype in zip(ctx.saved_tensors, ctx.dtypes):
                grads.append(None if g is None else (g * grad_total.to(g.dtype)).to(dtype))
            return grads[0], grads[1], grads[2], None, None, None, None

    return FusedLinearCrossEntropy


_FUSED_FN: Any = None


def fused_linear_cross_entropy(hidden: Any, weight: Any, labels: Any, *, delta: Any = None, ids: Any = None, chunk_rows: int = 256, mass: Any = None) -> Any:
    """Sum over positions of the cross-entropy of ``hidden @ W.T`` where W is ``weight`` with the rows
    ``ids`` replaced by ``delta``. Labels of -100 are ignored. Same value and gradients as the plain
    ``F.cross_entropy(hidden @ W.T, labels, reduction="sum")``, without the full logits in memory.
    ``mass`` (a float32 tensor with one entry per row of ``delta``), when given, gets each row's
    softmax probability summed over the labelled positions added to it."""
    global _FUSED_FN
    if _FUSED_FN is None:
        _FUSED_FN = _make_fused_function()
    torch = _torch()
    dtype = hidden.dtype
    if torch.is_autocast_enabled(hidden.device.type):
        dtype = torch.get_autocast_dtype(hidden.device.type)
    if delta is not None and ids is None:
        raise ValueError("delta needs ids")
    if mass is not None and delta is None:
        raise ValueError("mass needs delta and ids")
    return _FUSED_FN.apply(
        hidden.to(dtype), weight.to(dtype), None if delta is None else delta.to(dtype), labels, ids, chunk_rows, mass
    )


_STEP_CLASS: Any = None
_DROPOUT_CLASS: Any = None


def _fast_dropout(p: float) -> Any:
    """A dropout module that draws its mask 16 bits per element from 64-bit random words.

    On a CPU, ``nn.Dropout`` draws one random number per element (``bernoulli_``), which cost about 14%
    of a LoRA training step on smollm2-135m; four 16-bit draws per 64-bit word cost about a sixth of
    that. Elements are dropped with probability ``round(p * 65536) / 65536`` (0.05 -> 0.0500031) and
    the rest scaled by one over the probability they are kept, so outputs are unbiased as with
    ``nn.Dropout``; masks come from torch's default generator, so seeds, checkpoints with their RNG
    state, and activation checkpointing's replay give the same masks. Only the mask (one byte per
    element) is kept for the backward pass. In eval mode it returns its input.
    """
    global _DROPOUT_CLASS
    if _DROPOUT_CLASS is None:
        torch = _torch()

        class Masked(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, x: Any, keep: Any, scale: float) -> Any:
                ctx.save_for_backward(keep)
                ctx.scale = scale
                return x * keep * scale

            @staticmethod
            def backward(ctx: Any, grad: Any) -> Any:
                (keep,) = ctx.saved_tensors
                return grad * keep * ctx.scale, None, None

        class FastDropout(torch.nn.Module):
            def __init__(self, p: float) -> None:
                super().__init__()
                if not 0 < p < 1:
                    raise ValueError(f"dropout probability must be in (0, 1), got {p}")
                self.p = p
                dropped = round(p * 65536)
                self.threshold = dropped - 32768  # int16 values below it are dropped: dropped / 65536 of them
                self.scale = 65536 / (65536 - dropped)

            def forward(self, x: Any) -> Any:
                if not self.training:
                    return x
                n = x.numel()
                words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
                keep = words.view(torch.int16)[:n].view(x.shape) >= self.threshold
                return Masked.apply(x, keep, self.scale)

            def extra_repr(self) -> str:
                return f"p={self.p}"

        _DROPOUT_CLASS = FastDropout
    return _DROPOUT_CLASS(p)


def _use_fast_dropout(model: Any) -> int:
    """Swap the LoRA layers' ``nn.Dropout`` for :func:`_fast_dropout` (on CPU); returns how many."""
    torch = _torch()
    swapped = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, torch.nn.ModuleDict):
            continue
        for name, layer in list(dropouts.items()):
            if type(layer) is torch.nn.Dropout and 0 < layer.p < 1:
                dropouts[name] = _fast_dropout(layer.p)
                swapped += 1
    return swapped


def _make_step(model: Any) -> Any:
    """The training forward as one module (input ids -> mean next-token loss), for Accelerate to wrap."""
    global _STEP_CLASS
    if _STEP_CLASS is None:
        torch = _torch()

        class Step(torch.nn.Module):
            def __init__(self, model: Any) -> None:
                super().__init__()
                self.model = model
                # [(decoder, input side, output side, chunk rows)] once checked; a list keeps them out of
                # the module tree, so parameters are not registered twice.
                self.fused: list = []
                # each new row's probability summed over the positions since the last reset (the fused
                # step fills it when it is a tensor: rows_update="active")
                self.mass: Any = None

            def forward(self, input_ids: Any) -> Any:
                if not self.fused:
                    return self.model(input_ids=input_ids, labels=input_ids, use_cache=False).loss
                decoder, inp, out, chunk_rows = self.fused[0]
                embeds = torch.nn.functional.embedding(input_ids, inp.weight)
                if inp.delta is not None:
                    local = inp.lookup[input_ids]
                    rows = torch.nn.functional.embedding(local.clamp_min(0), inp.delta).to(embeds.dtype)
                    embeds = torch.where((local >= 0)[..., None], rows, embeds)
                hidden = decoder(inputs_embeds=embeds, use_cache=False).last_hidden_state
                h = hidden[:, :-1].reshape(-1, hidden.shape[-1])
                labels = input_ids[:, 1:].reshape(-1)
                mass = self.mass if out.delta is not None else None
                total = fused_linear_cross_entropy(h, out.weight, labels, delta=out.delta, ids=out.ids, chunk_rows=chunk_rows, mass=mass)
                return total / labels.numel()

        _STEP_CLASS = Step
    return _STEP_CLASS(model)


def _fused_parts(model: Any, device_type: str) -> tuple | None:
    """The decoder and both sides of the embeddings for the fused step, or None where it cannot apply."""
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = getattr(lm, getattr(lm, "base_model_prefix", ""), None)
    if decoder is None or not callable(decoder) or decoder is lm:
        return None
    emb, out = lm.get_input_embeddings(), lm.get_output_embeddings()
    if emb is None or out is None:
        return None
    inp_side, out_side = _side(emb), _side(out)
    if inp_side is None or out_side is None:
        return None
    vocab = out_side.weight.shape[0]
    # Chunk logits of about 32 MB on CPU (cache-friendly) and 256 MB on GPU (big matmuls).
    budget = 2**26 if device_type == "cuda" else 2**23
    return decoder, inp_side, out_side, max(16, budget // vocab)


def _enable_fused(step: Any, sample: Any, accelerator: Any) -> bool:
    """Use the fused step if it gives the plain forward's loss on ``sample``; say so when it does not."""
    torch = _torch()
    parts = _fused_parts(step.model, accelerator.device.type)
    if parts is None:
        return False
    was_training = step.training
    step.eval()
    try:
        with torch.no_grad(), accelerator.autocast():
            plain = step(sample).float().item()
            step.fused.append(parts)
            fused = step(sample).float().item()
    finally:
        step.train(was_training)
    tolerance = 2e-2 if accelerator.mixed_precision != "no" else 1e-4
    if not abs(plain - fused) <= tolerance * max(1.0, abs(plain)):
        step.fused.clear()
        warnings.warn(
            f"the row-sparse training step gives loss {fused:.5f} where the model's own forward gives {plain:.5f} "
            "(an embedding scale or logit cap this model applies); training with the plain forward",
            VocabxWarning,
            stacklevel=3,
        )
        return False
    return True


# ---------------------------------------------------------------------------------------------------
# Data order, schedule, checkpoints


class _BlockOrder:
    """Sample i of the run is block ``perm(i // n)[i % n]``: a fresh seeded permutation per epoch."""

    def __init__(self, n_blocks: int, seed: int) -> None:
        self.n = n_blocks
        self.seed = seed
        self._epoch = -1
        self._perm: Any = None

    def perm(self, epoch: int) -> Any:
        torch = _torch()
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.n, generator=generator).numpy()
            self._epoch = epoch
        return self._perm

    def take(self, start: int, count: int) -> list[int]:
        out = []
        for i in range(start, start + count):
            epoch, pos = divmod(i, self.n)
            out.append(int(self.perm(epoch)[pos]))
        return out


class _Replay:
    """Which samples of a run come from the replay text: sample i is replayed when the count of replayed
    samples, ``floor(i * fraction)`` (in exact integer arithmetic), steps up at i + 1, so they are spread
    evenly and the same on every process and after ``--resume``. Domain sample i reads domain block
    ``i - replayed(i)`` of its order, a replayed one replay block ``replayed(i)`` of its own."""

    def __init__(self, fraction: float) -> None:
        from fractions import Fraction

        share = Fraction(fraction).limit_denominator(10_000)
        self.fraction = float(fraction)
        self.p, self.q = share.numerator, share.denominator

    def replayed(self, i: int) -> int:
        """Replayed samples among samples 0 .. i - 1."""
        return i * self.p // self.q

    def batch(self, first: int, count: int, blocks: Any, order: "_BlockOrder", replay_blocks: Any, replay_order: "_BlockOrder") -> Any:
        import numpy as np

        rows = []
        for i in range(first, first + count):
            r = self.replayed(i)
            if self.replayed(i + 1) > r:
                rows.append(replay_blocks[replay_order.take(r, 1)[0]])
            else:
                rows.append(blocks[order.take(i - r, 1)[0]])
        return np.stack(rows)


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warmup to 1 over ``warmup`` steps, then cosine down to ``min_ratio`` at ``total``.

    total 10, warmup 2, min 0.1 -> step 0: 0.5, 1: 1.0, 2: 1.0, 6: 0.55, 9: 0.134
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class _Checkpoints:
    """Accelerate states under ``folder/step-NNNNNNNN``, each complete or absent."""

    def __init__(self, folder: Path, keep: int) -> None:
        self.folder = folder
        self.keep = keep

    def complete(self) -> list[tuple[int, Path]]:
        found = []
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                match = re.fullmatch(r"step-(\d+)", path.name)
                if match and (path / "vocabx_state.json").is_file():
                    found.append((int(match.group(1)), path))
        return sorted(found)

    def newest(self) -> tuple[int, Path] | None:
        done = self.complete()
        return done[-1] if done else None

    def save(self, accelerator: Any, step: int, state: dict) -> Path:
        final = self.folder / f"step-{step:08d}"
        tmp = self.folder / f".step-{step:08d}.tmp"
        if accelerator.is_main_process:
            self.folder.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            # The state file goes in last: a folder without it is an interrupted save.
            (tmp / "vocabx_state.json").write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
            old = None
            if final.exists():
                old = final.with_name(final.name + ".old")
                os.replace(final, old)
            os.replace(tmp, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            for _, path in self.complete()[: -self.keep]:
                shutil.rmtree(path, ignore_errors=True)
            for path in self.folder.glob(".step-*.tmp"):
                shutil.rmtree(path, ignore_errors=True)
        accelerator.wait_for_everyone()
        return final


def _row_ids(model: Any) -> list[tuple[Any, Any, int]]:
    """Each trained new-rows parameter (PEFT's ``trainable_tokens_delta``) with the token id of each row
    and the number of rows of the embedding it belongs to."""
    torch = _torch()
    out = []
    for module in model.modules():
        layer = _token_layer(module)
        if layer is None or layer is not module or layer.tied_adapter is not None:
            continue  # (a tied layer shares its source's parameter: listed once)
        rows = layer.get_base_layer().weight.shape[0]
        for name in layer.active_adapters:
            delta = layer.trainable_tokens_delta[name]
            if delta.requires_grad:
                out.append((delta, torch.tensor(layer.token_indices[name], dtype=torch.long, device=delta.device), rows))
    return out


def _active_rows(mass: Any, row_mass: float, positions: int) -> Any:
    """Which rows (a boolean mask over ``mass``) took a probability, summed over a step's ``positions``,
    of at least ``row_mass`` per 1,000 positions. A mask rather than the token ids: selecting them would
    wait on the GPU every step."""
    return mass >= row_mass * positions / 1000


def _keep_rows_in_batch(row_ids: list[tuple[Any, Any, int]], batches: list[Any], accelerator: Any, active: Any = None) -> None:
    """Zero the gradient of every new row whose token is in none of this step's batches, on any process.

    Each position's softmax pushes every new row's logit down a little; Adam scales those small pushes
    up, so rows the step never saw would move as far as the ones it did and, step after step, new tokens
    end up too improbable wherever training has not met them yet. Only the rows of tokens in the batch
    (as input or target) keep their gradient; without momentum (beta1 = 0 for the rows) the others do
    not move. The presence mask is summed over processes, so every process zeroes the same rows.
    ``active`` (optional: token ids and a boolean mask over them) are rows to keep as well: with
    ``rows_update="active"``, those whose tokens took at least ``row_mass`` of the probability where they
    were not in the batch, so that a token the model predicts where it does not belong is pushed down there.
    """
    torch = _torch()
    # (a scatter into one mask and a multiply per side: no host synchronization, which matters on a GPU)
    device = row_ids[0][1].device
    seen = torch.zeros(max(rows for _, _, rows in row_ids), dtype=torch.bool, device=device)
    for batch in batches:
        seen[batch.reshape(-1).to(device)] = True
    if active is not None:
        ids, mask = (t.to(device) for t in active)
        seen[ids] = seen[ids] | mask
    for delta, ids, _ in row_ids:
        if delta.grad is None:
            continue
        present = seen[ids].to(delta.grad.dtype)
        if accelerator.num_processes > 1:
            present = (accelerator.reduce(present, "sum") > 0).to(delta.grad.dtype)
        delta.grad.mul_(present.unsqueeze(1))


def _trainable(model: Any) -> dict:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _register_state_hooks(accelerator: Any, model: Any) -> None:
    """Checkpoints hold only the trained weights: a few MB for LoRA, not the frozen model."""

    def save_hook(models: list, weights: list, output_dir: str) -> None:
        if weights:
            weights[0] = {name: p.detach().contiguous() for name, p in _trainable(model).items()}

    def load_hook(models: list, input_dir: str) -> None:
        from safetensors.torch import load_file

        path = Path(input_dir) / "model.safetensors"
        state = load_file(str(path), device=str(next(model.parameters()).device))
        missing = sorted(set(_trainable(model)) - set(state))
        if missing:
            raise VocabxError(f"checkpoint {input_dir} lacks {len(missing)} trained weights (such as {missing[0]}); it was made by a different run configuration")
        model.load_state_dict(state, strict=False)
        models.clear()

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


# ---------------------------------------------------------------------------------------------------
# Output folder


# Settings that may change between a checkpoint and --resume without changing what the run computes.
_RESUMABLE_CHANGES = {"adapter_dtype", "max_steps", "eval_every", "save_every", "keep_checkpoints", "eval_batch_size", "merge", "num_proc", "trackers", "compile", "gradient_checkpointing", "max_eval_docs", "eval_fraction"}


def _prepare_output(out: Path, resume: bool, overwrite: bool, accelerator: Any) -> dict | None:
    """Check the output folder for a new run or a resume; return the earlier run's record on resume."""
    from vocabx.outputs import check_output_dir

    if resume and overwrite:
        raise VocabxError("--resume continues the run in -o and --overwrite replaces it; pass one of them")
    if resume:
        record_path = out / MARKER
        if not record_path.is_file():
            raise VocabxError(f"nothing to resume in {out}: it holds no {MARKER}; drop --resume to start a new run")
        if _Checkpoints(out / "checkpoints", 1).newest() is None:
            raise VocabxError(f"nothing to resume in {out}: no complete checkpoint in {out / 'checkpoints'}; drop --resume and pass --overwrite to start again")
        return json.loads(record_path.read_text(encoding="utf-8"))
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise VocabxError(f"output folder {out} exists and is not empty; pass --resume to continue its run, --overwrite to replace it, or pick another -o folder")
    check_output_dir(out, overwrite, MARKER, "training run")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
    accelerator.wait_for_everyone()
    return None


def _check_resume(previous: dict, config: TrainConfig, data: dict, rows: _Rows, world: int) -> None:
    old = previous.get("config", {})
    for name, value in config.as_dict().items():
        if name not in _RESUMABLE_CHANGES and name in old and old[name] != value:
            raise VocabxError(f"--resume with {flag(name)} {value!r}, but the run was started with {old[name]!r}; pass the same value")
    if previous.get("data", {}).get("fingerprint") != data["fingerprint"]:
        raise VocabxError("--resume with a different training corpus than the run was started with; pass the same CORPUS and --eval-fraction")
    if previous.get("data", {}).get("replay_fingerprint") != data.get("replay_fingerprint"):
        raise VocabxError("--resume with different --replay text than the run was started with; pass the same --replay CORPUS (or none, if it had none)")
    if previous.get("extension", {}).get("trainable_ids") != rows.trainable_ids or previous.get("extension", {}).get("embedding_rows") != rows.embedding_rows:
        raise VocabxError("--resume with a different --model than the run was started with; pass the same model folder")
    if previous.get("processes") not in (None, world):
        raise VocabxError(f"--resume on {world} processes, but the run was started on {previous.get('processes')}; the data order depends on it, so launch the same number")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _versions() -> dict:
    import accelerate
    import peft
    import torch
    import transformers

    from vocabx import __version__

    return {"vocabx": __version__, "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__, "accelerate": accelerate.__version__}


# ---------------------------------------------------------------------------------------------------
# The run


def _forward_loss(step: Any, input_ids: Any) -> Any:
    """One micro-batch's mean loss (a seam for tests that inject failures)."""
    return step(input_ids)


def milestone(step: int, total: int) -> bool:
    """Whether ``step`` (1-based) of ``total`` ends one of ten equal parts of the run (each step when
    there are ten or fewer). 300 steps -> 30, 60, ..., 300."""
    return step == total or step * 10 // total != (step - 1) * 10 // total


def _duration(seconds: float) -> str:
    """A rough duration for a progress line: 42 -> '42 s', 1500 -> '25 min', 7900 -> '2.2 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _is_oom(exc: BaseException) -> bool:
    torch = _torch()
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text or "not enough memory" in text)


def _evaluate(accelerator: Any, model: Any, tokenizer: Any, texts: list[str], config: TrainConfig) -> dict | None:
    """Held-out loss per token and bits per UTF-8 byte, each process scoring its share of the documents."""
    torch = _torch()
    from vocabx.metrics import bits_per_byte

    if not texts:
        return None
    started = time.perf_counter()
    mine = texts[accelerator.process_index :: accelerator.num_processes]
    sums = torch.zeros(3, dtype=torch.float64, device=accelerator.device)
    if mine:
        with accelerator.autocast():
            scored = bits_per_byte(model, tokenizer, mine, block_size=config.block_size, batch_size=config.eval_batch_size)
        sums += torch.tensor([scored["nll_sum"], scored["tokens"], scored["bytes"]], dtype=torch.float64, device=accelerator.device)
    sums = accelerator.reduce(sums, "sum")
    nll, tokens, n_bytes = (float(x) for x in sums.cpu())
    return {"eval_loss": nll / max(tokens, 1), "eval_bpb": nll / math.log(2) / max(n_bytes, 1), "eval_tokens": int(tokens), "eval_seconds": round(time.perf_counter() - started, 3)}


def train(
    model: Any,
    texts: Iterable[str],
    output_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    tokenizer: Any = None,
    eval_texts: Iterable[str] | None = None,
    replay_texts: Iterable[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    trust_remote_code: bool = False,
    **overrides: Any,
) -> TrainResult:
    """Train ``model`` (an extended model folder, a model spec, or a loaded model with ``tokenizer``) on
    ``texts`` and write the adapter into ``output_dir``.

    ``config`` fields can also be given as keywords (``max_steps=20``). Documents are split into train
    and eval by ``eval_fraction`` unless ``eval_texts`` are given. ``replay_texts`` (general text, none of
    the documents the model will be judged on) supply ``replay_fraction`` of the training blocks, so
    that the new tokens and LoRA also learn where the domain's tokens fire in other text and the model
    keeps its general behaviour (rehearsal). ``resume`` continues the run in
    ``output_dir`` from its newest checkpoint. ``progress`` shows a progress bar on stderr (None: when
    stderr is a terminal). Runs on as many processes as ``accelerate launch`` started; only the main
    process writes files, and only its result has ``is_main_process``.

    >>> result = vocabx.train("ext", vocabx.read_corpus("corpora/medical"), "adapter", max_steps=20)  # doctest: +SKIP
    >>> result.eval_bpb, result.adapter_bytes                                                         # doctest: +SKIP
    (1.02, 2151480)
    """
    config = replace(config or TrainConfig(), **overrides) if overrides else (config or TrainConfig())
    if config.batch_size is None:
        # 8 x 512 tokens in fp32 on CPU would hold about 12 GB of activations for a 135M model.
        config = replace(config, batch_size=8 if _torch().cuda.is_available() else 2)
    run = _Run(config, Path(os.path.abspath(output_dir)), progress)
    try:
        previous = _prepare_output(run.out, resume, overwrite, run.accelerator)
        run.load_model(model, tokenizer, trust_remote_code)
        run.load_data(texts, eval_texts, previous, replay_texts)
        run.build()
        run.start(previous)
        run.loop()
        return run.finish()
    finally:
        run.close()


class _Run:
    """One training run's state, from the Accelerator to the export; :func:`train` calls the phases in order."""

    def __init__(self, config: TrainConfig, out: Path, progress: bool | None) -> None:
        torch = _torch()
        from accelerate import Accelerator

        self.config = config
        self.out = out
        self.progress = progress
        use_cuda = torch.cuda.is_available()
        precision = config.mixed_precision
        if precision == "auto":
            precision = "bf16" if use_cuda and torch.cuda.is_bf16_supported() else "no"
        self.precision = precision
        self.trackers = "tensorboard" if config.trackers == "auto" and any(_has(m) for m in ("tensorboard", "tensorboardX")) else None
        self.accelerator = Accelerator(mixed_precision=precision, log_with=self.trackers, project_dir=str(out), cpu=not use_cuda)
        self.main = self.accelerator.is_main_process
        self.world = self.accelerator.num_processes
        self.history: list[dict] = []
        self.bar: Any = None

    # -- phases ----------------------------------------------------------------------------------------

    def load_model(self, model: Any, tokenizer: Any, trust_remote_code: bool) -> None:
        """The model and tokenizer; frozen weights in bf16 when training in bf16 (not in full mode)."""
        torch = _torch()
        from accelerate.utils import set_seed

        from vocabx.models import load_model, load_tokenizer

        set_seed(self.config.seed)
        frozen_bf16 = self.precision == "bf16" and self.config.mode != "full"
        self.spec = None
        if isinstance(model, (str, os.PathLike)):
            self.spec = os.fspath(model)
            tokenizer = tokenizer or load_tokenizer(self.spec, trust_remote_code=trust_remote_code)
            model = load_model(self.spec, dtype=torch.bfloat16 if frozen_bf16 else None, trust_remote_code=trust_remote_code)
        elif tokenizer is None:
            raise VocabxError("train() got a model object but no tokenizer; pass tokenizer=")
        elif frozen_bf16:
            model.to(torch.bfloat16)
        self.model, self.tokenizer = model, tokenizer
        self.rows = _rows_of(self.spec, model, tokenizer, self.config)
        context = _context_length(model)
        if context is not None and self.config.block_size > context:
            raise VocabxError(f"--block-size {self.config.block_size} is longer than the model's context of {context} tokens; pass --block-size {context} or less")

    def load_data(self, texts: Iterable[str], eval_texts: Iterable[str] | None, previous: dict | None, replay_texts: Iterable[str] | None = None) -> None:
        """Split, tokenize and pack (the replay text too); check there is at least one batch; fix the number of steps."""
        from vocabx.data import _fingerprint, eos_id, pack_texts, split_documents

        config, accelerator = self.config, self.accelerator
        docs = list(texts)
        if eval_texts is not None:
            train_docs, held = docs, list(eval_texts)[: config.max_eval_docs or None]
        else:
            train_docs, held = split_documents(docs, config.eval_fraction, config.seed, max_eval_docs=config.max_eval_docs)
        if not train_docs:
            raise VocabxError("the corpus has no documents left for training after the eval split; give more text or lower --eval-fraction")
        with accelerator.main_process_first():
            packed = pack_texts(train_docs, self.tokenizer, config.block_size, num_proc=config.num_proc)
        self.blocks = packed.blocks
        split_data: dict = {}
        if config.split_new:
            from vocabx.data import split_tokens

            self.blocks, counts = split_tokens(self.blocks, _split_pieces(self.rows, self.tokenizer), config.split_new, config.seed)
            split_data = {"split_new": counts}
        self.per_micro = config.batch_size * self.world
        if self.blocks.shape[0] < self.per_micro:
            raise VocabxError(
                f"the training split packs into {self.blocks.shape[0]} blocks of --block-size {config.block_size} "
                f"({packed.tokens:,} tokens), fewer than one batch of {self.per_micro} (--batch-size {config.batch_size} x {self.world} processes); "
                "give more text or lower --block-size or --batch-size"
            )
        self.replay_blocks = None
        self.replay = _Replay(0.0)
        replay_data: dict = {}
        if replay_texts is not None:
            replay_docs = [t for t in replay_texts if t.strip()]
            with accelerator.main_process_first():
                replayed = pack_texts(replay_docs, self.tokenizer, config.block_size, num_proc=config.num_proc)
            if replayed.blocks.shape[0] == 0:
                raise VocabxError(
                    f"the replay text packs into no block of --block-size {config.block_size} ({replayed.tokens:,} tokens in {len(replay_docs)} documents); "
                    "give more replay text or lower --block-size"
                )
            self.replay_blocks = replayed.blocks
            self.replay = _Replay(config.replay_fraction)
            replay_data = {
                "replay_docs": len(replay_docs), "replay_blocks": int(replayed.blocks.shape[0]), "replay_fraction": config.replay_fraction,
                "replay_fingerprint": _fingerprint(replay_docs, self.tokenizer, config.block_size, eos_id(self.tokenizer)),
            }
        # (by default one pass over the domain's blocks, replayed blocks coming on top)
        self.max_steps = config.max_steps or max(1, math.ceil(self.blocks.shape[0] / ((1 - self.replay.fraction) * self.per_micro * config.grad_accum)))
        self.warmup = config.warmup_steps if config.warmup_steps is not None else round(0.05 * self.max_steps)
        self.held = held
        self.train_docs = len(train_docs)
        self.data = {**packed.as_dict(), "train_docs": len(train_docs), "eval_docs": len(held), "fingerprint": _fingerprint(train_docs, self.tokenizer, config.block_size, eos_id(self.tokenizer)), **replay_data, **split_data}
        if previous is not None:
            _check_resume(previous, config, self.data, self.rows, self.world)
        if not held:
            warnings.warn("no documents held out for evaluation (--eval-fraction 0 or a one-document corpus); eval_bpb will be null", VocabxWarning, stacklevel=3)

    def build(self) -> None:
        """PEFT wrapping, the fused step (when it matches), optimizer groups, schedule, Accelerate."""
        torch = _torch()
        config, accelerator = self.config, self.accelerator
        peft_model = _wrap_peft(self.model, self.rows, config)
        if accelerator.device.type == "cpu":
            _use_fast_dropout(peft_model)
        if config.gradient_checkpointing:
            base = peft_model.get_base_model() if hasattr(peft_model, "get_base_model") else peft_model
            if hasattr(base, "activation_checkpointing_enable"):  # the name since transformers 5
                base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            base.config.use_cache = False
        self.peft_model = peft_model
        self.trained = _trainable(peft_model)
        rows = [p for n, p in self.trained.items() if "trainable_tokens_delta" in n]
        self.other_params = [p for n, p in self.trained.items() if "trainable_tokens_delta" not in n]
        groups = []
        if self.other_params:
            groups.append({"params": self.other_params, "lr": config.lr, "weight_decay": config.weight_decay, "name": "lora" if config.mode != "full" else "all"})
        if rows:
            group = {"params": rows, "lr": config.embedding_lr, "weight_decay": 0.0, "name": "rows"}
            if config.rows_update != "dense":
                group["betas"] = (0.0, 0.95)  # no momentum: a row without gradient stays where it is
            groups.append(group)
        # (delta parameter, the token id of each of its rows), for the sparse row update
        self.row_ids = _row_ids(peft_model) if rows and config.rows_update != "dense" else []
        self.n_trainable = sum(p.numel() for p in self.trained.values())
        step_module = _make_step(peft_model).to(accelerator.device)
        self.fused = False
        if config.fused_loss:
            sample = torch.as_tensor(self.blocks[: min(2, self.blocks.shape[0]), : min(64, config.block_size)].astype("int64"), device=accelerator.device)
            self.fused = _enable_fused(step_module, sample, accelerator)
        # rows_update="active": each new row's probability, summed by the fused step, and its token ids
        self.mass = self.mass_ids = None
        if config.rows_update == "active" and self.row_ids:
            out = step_module.fused[0][2] if self.fused else None
            if out is not None and out.delta is not None:
                self.mass = step_module.mass = torch.zeros(len(out.ids), dtype=torch.float32, device=accelerator.device)
                self.mass_ids = out.ids
            else:
                warnings.warn("--rows-update active needs the fused training step, which this model does not use; moving only the rows of tokens in each batch (sparse)", VocabxWarning, stacklevel=3)
        self.compiled = _should_compile(config.compile, accelerator.device.type)
        if self.compiled:
            # Block by block: one compiled graph serves every block, so compiling takes seconds, not minutes.
            lm = peft_model.get_base_model() if hasattr(peft_model, "get_base_model") else peft_model
            decoder = getattr(lm, getattr(lm, "base_model_prefix", ""), lm)
            for block in getattr(decoder, "layers", None) or [decoder]:
                block.compile()
        fast = {"fused": True} if accelerator.device.type == "cuda" else {"foreach": True}
        optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.95), eps=1e-8, **fast)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [self._schedule(g["name"]) for g in groups])
        self.step_module, self.optimizer = accelerator.prepare(step_module, optimizer)
        self.scheduler = scheduler
        # Not prepared: Accelerate would step it once per process; its state is saved with the checkpoint.
        accelerator.register_for_checkpointing(scheduler)
        _register_state_hooks(accelerator, peft_model)
        # The model was made identically on every process; dropout should differ between them.
        torch.manual_seed(config.seed + 1 + accelerator.process_index)

    def _schedule(self, group: str) -> Any:
        config, total, warmup = self.config, self.max_steps, self.warmup
        if group == "lora" and config.embedding_warmup_steps:
            k = config.embedding_warmup_steps
            return lambda s: 0.0 if s < k else lr_factor(s - k, total - k, warmup, config.min_lr_ratio)
        return lambda s: lr_factor(s, total, warmup, config.min_lr_ratio)

    def start(self, previous: dict | None) -> None:
        """Restore the newest checkpoint on resume; write the run record; open the log and the bar."""
        config = self.config
        self.checkpoints = _Checkpoints(self.out / "checkpoints", config.keep_checkpoints)
        self.log_path = self.out / "log.jsonl"
        self.step, self.tokens_seen, self.train_seconds = 0, 0, 0.0
        if previous is not None:
            newest = self.checkpoints.newest()
            assert newest is not None
            self.accelerator.load_state(str(newest[1]))
            state = json.loads((newest[1] / "vocabx_state.json").read_text(encoding="utf-8"))
            self.step, self.tokens_seen, self.train_seconds = state["step"], state["tokens"], state["train_seconds"]
            if self.log_path.is_file():
                records = map(json.loads, self.log_path.read_text(encoding="utf-8").splitlines())
                self.history = [r for r in records if r.get("step", 0) <= self.step]
            self.note(f"resuming {self.out} from step {self.step}")
        self.record = {
            "schema": SCHEMA,
            "status": "running",
            "model": self.spec,
            "mode": config.mode,
            "config": config.as_dict(),
            "extension": self.rows.as_dict(),
            "data": self.data,
            "processes": self.world,
            "device": self.accelerator.device.type,
            "mixed_precision": self.precision,
            "fused_loss": self.fused,
            "compiled": self.compiled,
            "trainable_parameters": self.n_trainable,
            "versions": _versions(),
        }
        if self.main:
            _write_json(self.out / MARKER, self.record)
            self.log_path.write_text("".join(json.dumps(r) + "\n" for r in self.history), encoding="utf-8")
            if self.trackers:
                flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in config.as_dict().items()}
                self.accelerator.init_trackers("vocabx", config=flat)
            self.note(
                f"training {self.spec or type(self.model).__name__} ({config.mode}, {self.n_trainable:,} trained parameters) on "
                f"{self.blocks.shape[0]:,} blocks of {config.block_size} tokens from {self.train_docs:,} documents; {len(self.held):,} eval documents"
                + (f"; {config.replay_fraction:.0%} of the blocks replayed from {self.replay_blocks.shape[0]:,} blocks of {self.data['replay_docs']:,} replay documents" if self.replay_blocks is not None else "")
            )
            if self.progress if self.progress is not None else sys.stderr.isatty():
                from tqdm.auto import tqdm

                self.bar = tqdm(total=self.max_steps, initial=self.step, desc="train", unit="step", file=sys.stderr, dynamic_ncols=True)

    def loop(self) -> None:
        """Optimizer steps until ``max_steps``: accumulate, check the loss, clip, step; eval and save on schedule."""
        torch = _torch()
        config, accelerator = self.config, self.accelerator
        order = _BlockOrder(int(self.blocks.shape[0]), config.seed)
        replay_order = _BlockOrder(int(self.replay_blocks.shape[0]), config.seed + 1) if self.replay_blocks is not None else None
        tokens_per_step = self.per_micro * config.block_size * config.grad_accum
        self.session_tokens, self.session_seconds, self.session_start = 0, 0.0, self.step
        self.last_eval: dict | None = None
        try:
            while self.step < self.max_steps:
                started = time.perf_counter()
                losses = []
                step_ids = []
                for micro in range(config.grad_accum):
                    m = self.step * config.grad_accum + micro
                    first = m * self.per_micro + accelerator.process_index * config.batch_size
                    if replay_order is None:
                        batch = self.blocks[order.take(first, config.batch_size)]
                    else:
                        batch = self.replay.batch(first, config.batch_size, self.blocks, order, self.replay_blocks, replay_order)
                    ids = torch.as_tensor(batch.astype("int64"), device=accelerator.device)
                    step_ids.append(ids)
                    last = micro == config.grad_accum - 1
                    with contextlib.nullcontext() if last else accelerator.no_sync(self.step_module):
                        with accelerator.autocast():
                            loss = _forward_loss(self.step_module, ids)
                        accelerator.backward(loss / config.grad_accum)
                    losses.append(loss.detach().float())
                mean_loss = accelerator.reduce(torch.stack(losses).mean(), "mean").item()
                if not math.isfinite(mean_loss):
                    kept = self.checkpoints.newest()
                    where = f"the last checkpoint, {kept[1]}, is kept" if kept else "no checkpoint was written yet"
                    raise VocabxError(f"the loss became {mean_loss} at step {self.step + 1}; training stopped and {where}; lower --lr or --embedding-lr, or check the data")
                if self.step < config.embedding_warmup_steps:
                    for p in self.other_params:  # rows alone: LoRA gets no update and no optimizer state yet
                        p.grad = None
                if self.row_ids:
                    active = None
                    if self.mass is not None:
                        positions = sum(ids.shape[0] * (ids.shape[1] - 1) for ids in step_ids)
                        active = (self.mass_ids, _active_rows(self.mass, config.row_mass, positions))
                        self.mass.zero_()
                    _keep_rows_in_batch(self.row_ids, step_ids, accelerator, active)
                grad_norm = None
                if config.max_grad_norm > 0:
                    grad_norm = float(accelerator.clip_grad_norm_([p for p in self.trained.values() if p.grad is not None], config.max_grad_norm))
                lrs = {g["name"]: g["lr"] for g in self.optimizer.param_groups}
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                seconds = time.perf_counter() - started
                self.tokens_seen += tokens_per_step
                self.session_tokens += tokens_per_step
                self.session_seconds += seconds
                self.train_seconds += seconds
                self.write_log({
                    "type": "train", "step": self.step, "loss": mean_loss, "lr": lrs.get("lora", lrs.get("all")), "lr_rows": lrs.get("rows"),
                    "grad_norm": grad_norm, "tokens": self.tokens_seen, "step_seconds": round(seconds, 4), "tokens_per_second": round(tokens_per_step / seconds, 1),
                })
                if self.bar is not None:
                    self.bar.set_postfix(loss=f"{mean_loss:.4f}", tok_s=f"{self.session_tokens / self.session_seconds:,.0f}", refresh=False)
                    self.bar.update(1)
                elif milestone(self.step, self.max_steps):
                    # (no bar where stderr is a log file: a line every tenth of the run instead)
                    left = (self.max_steps - self.step) * self.session_seconds / max(1, self.step - self.session_start)
                    self.note(
                        f"step {self.step}/{self.max_steps}: loss {mean_loss:.4f}, {self.session_tokens / self.session_seconds:,.0f} tokens/s, "
                        f"about {_duration(left)} left"
                    )
                if config.eval_every and self.step % config.eval_every == 0 and self.step < self.max_steps:
                    self.evaluate()
                if config.save_every and (self.step % config.save_every == 0 or self.step == self.max_steps):
                    state = {"step": self.step, "tokens": self.tokens_seen, "train_seconds": self.train_seconds, "processes": self.world}
                    self.note(f"step {self.step}: checkpoint {self.checkpoints.save(accelerator, self.step, state)}")
        except Exception as exc:
            if _is_oom(exc):
                raise VocabxError(
                    f"out of memory at step {self.step + 1} with --batch-size {config.batch_size} x --block-size {config.block_size}; "
                    "lower --batch-size (raise --grad-accum to keep the tokens per step) or pass --gradient-checkpointing"
                ) from exc
            raise
        finally:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    def evaluate(self) -> None:
        self.last_eval = _evaluate(self.accelerator, self.peft_model, self.tokenizer, self.held, self.config)
        if self.last_eval:
            self.write_log({"type": "eval", "step": self.step, **self.last_eval})
            self.note(f"step {self.step}: eval loss {self.last_eval['eval_loss']:.4f}, {self.last_eval['eval_bpb']:.4f} bits per byte")

    def finish(self) -> TrainResult:
        """Round to the adapter's precision, evaluate, export (and merge), and report."""
        torch = _torch()
        config = self.config
        if config.adapter_dtype == "bf16" and config.mode != "full":
            # The adapter is stored in bf16; the model evaluated and returned is the one it holds.
            with torch.no_grad():
                for p in self.trained.values():
                    p.copy_(p.to(torch.bfloat16))
        self.evaluate()
        losses = [r["loss"] for r in self.history if r.get("type") == "train"][-10:]
        metrics = {
            "train_loss": sum(losses) / len(losses) if losses else None,
            "eval_loss": self.last_eval["eval_loss"] if self.last_eval else None,
            "eval_bpb": self.last_eval["eval_bpb"] if self.last_eval else None,
            "steps": self.step,
            "tokens": self.tokens_seen,
            "tokens_per_second": round(self.session_tokens / self.session_seconds, 1) if self.session_seconds else 0.0,
            "seconds": round(self.train_seconds, 2),
        }
        merged_dir, adapter_bytes = None, 0
        if self.main:
            adapter_bytes = _export(self.out, self.peft_model, self.tokenizer, self.rows, config, self.spec)
            if config.merge and config.mode != "full":
                merged_dir = str(self.out / "merged")
                _write_merged(self.out, self.spec, self.peft_model, self.tokenizer, self.record)
            finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.record.update(status="done", metrics=metrics, adapter_bytes=adapter_bytes, merged_dir=merged_dir, finished=finished)
            (self.out / "train.md").write_text(_summary_md(self.record, self.history), encoding="utf-8")
            _write_json(self.out / MARKER, self.record)
        self.accelerator.wait_for_everyone()
        self.peft_model.eval()
        return TrainResult(
            output_dir=str(self.out), mode=config.mode, trainable_parameters=self.n_trainable, adapter_bytes=adapter_bytes,
            merged_dir=merged_dir, history=self.history, model=self.peft_model, tokenizer=self.tokenizer, is_main_process=self.main,
            **{k: metrics[k] for k in ("steps", "train_loss", "eval_loss", "eval_bpb", "tokens", "tokens_per_second", "seconds")},
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.trackers and self.main:
            self.accelerator.end_training()
        if self.world == 1:
            # Accelerate keeps its state in process-wide singletons; a later run in this process may ask
            # for another precision or device.
            from accelerate.state import AcceleratorState, GradientState

            AcceleratorState._reset_state(reset_partial_state=True)
            GradientState._reset_state()

    # -- helpers ---------------------------------------------------------------------------------------

    def note(self, message: str) -> None:
        if not self.main:
            return
        if self.bar is not None:
            self.bar.write(f"vocabx: {message}", file=sys.stderr)
        else:
            log.info(message)

    def write_log(self, entry: dict) -> None:
        self.history.append(entry)
        if self.main:
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
            if self.trackers:
                values = {f"{entry['type']}/{k}": v for k, v in entry.items() if isinstance(v, (int, float)) and k not in ("step", "type")}
                self.accelerator.log(values, step=entry["step"])


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _should_compile(setting: str, device_type: str) -> bool:
    """``--compile auto`` compiles on a CUDA GPU where Triton is installed (the blocks' graphs are where the
    GPU spends its launch overhead); CPU training stays eager, where compiling costs more than it saves."""
    if setting != "auto":
        return setting == "yes"
    return device_type == "cuda" and _has("triton")


def _export(out: Path, model: Any, tokenizer: Any, rows: _Rows, config: TrainConfig, spec: str | None) -> int:
    """Write the adapter (or, in full mode, the model), tokenizer, stored rows and config; return the weights' bytes."""
    import yaml

    from vocabx.outputs import _public

    staging = out / ".export.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        if config.mode == "full":
            model.save_pretrained(staging)
            weights = sum(p.stat().st_size for p in staging.glob("*.safetensors"))
        else:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*(tie|vocab|config file).*")
                model.save_pretrained(staging, save_embedding_layers=False)
            adapter_config = staging / "adapter_config.json"
            data = json.loads(adapter_config.read_text(encoding="utf-8"))
            data["base_model_name_or_path"] = spec
            adapter_config.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            if config.adapter_dtype == "bf16":
                _to_bf16(staging / "adapter_model.safetensors")
            weights = (staging / "adapter_model.safetensors").stat().st_size
            if rows.stored_ids:
                _save_rows(model, rows, staging / ROWS_FILE)
        tokenizer.save_pretrained(staging)
        (staging / "train_config.yaml").write_text(
            "# vocabx train settings of this adapter; reusable with --config\n" + yaml.safe_dump(config.as_dict(), sort_keys=False), encoding="utf-8"
        )
        _public(staging)
        for path in staging.iterdir():
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return int(weights)


def _to_bf16(path: Path) -> None:
    """Rewrite a safetensors file with its float32 tensors in bfloat16 (they were rounded to it already)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    torch = _torch()
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    save_file({k: v.to(torch.bfloat16) if v.dtype == torch.float32 else v for k, v in tensors.items()}, str(path), metadata=metadata)


def _save_rows(model: Any, rows: _Rows, path: Path) -> None:
    from safetensors.torch import save_file

    torch = _torch()
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    ids = torch.tensor(rows.stored_ids, dtype=torch.long)
    tensors = {"ids": ids}
    emb = lm.get_input_embeddings()
    layer = _token_layer(emb)
    weight = (layer.get_base_layer() if layer is not None else emb).weight
    tensors["input"] = weight.detach()[ids.to(weight.device)].cpu().contiguous()
    out = lm.get_output_embeddings()
    if not rows.tied and out is not None:
        layer = _token_layer(out)
        weight = (layer.get_base_layer() if layer is not None else out).weight
        tensors["output"] = weight.detach()[ids.to(weight.device)].cpu().contiguous()
    save_file(tensors, str(path), metadata={"schema": "vocabx.rows/1"})


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
    with staged_dir(out / "merged", overwrite=True, marker="config.json", what="merged model") as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def _summary_md(record: dict, history: list[dict]) -> str:
    m = record.get("metrics", {})
    lines = [
        f"# vocabx training run ({record['schema']})",
        "",
        f"- model: `{record['model']}`, mode `{record['mode']}`, {record['trainable_parameters']:,} trained parameters",
        f"- data: {record['data']['train_docs']:,} training documents in {record['data']['blocks']:,} blocks of {record['data']['block_size']} tokens; {record['data']['eval_docs']:,} eval documents",
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
    if not path.is_file():
        raise VocabxError(f"{os.fspath(adapter_dir)!r} has no {MARKER}; pass a folder written by vocabx train")
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("schema") != SCHEMA:
        raise VocabxError(f"{path}: schema {record.get('schema')!r}, expected {SCHEMA!r}")
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


def _rebuild(record: dict, base: Any, adapter_dir: str | os.PathLike, *, dtype: Any, merge: bool, trust_remote_code: bool = False) -> Any:
    from vocabx.initialize import embedding_rows, is_tied, resize_for_new_tokens
    from vocabx.models import load_model

    if record["mode"] == "full":
        return load_model(os.fspath(adapter_dir), dtype=dtype).eval()
    ext = record["extension"]
    model = base if not isinstance(base, (str, os.PathLike)) else load_model(os.fspath(base), dtype=dtype, trust_remote_code=trust_remote_code)
    hidden = model.get_input_embeddings().weight.shape[1]
    rows = embedding_rows(model)
    if hidden != ext["hidden_size"] or rows > ext["embedding_rows"] or rows < ext["n_base"]:
        raise VocabxError(
            f"the adapter in {os.fspath(adapter_dir)!r} was trained on a model with {ext['embedding_rows']} embedding rows of size {ext['hidden_size']}, "
            f"but {base!r} has {rows} rows of size {hidden}; pass its base model ({ext.get('base_model') or record.get('model')}) or the extended folder"
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

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(no implementation exists to tie|is_gradient_checkpointing).*")
        adapted = PeftModel.from_pretrained(model, os.fspath(adapter_dir))
    if merge:
        return adapted.merge_and_unload().eval()
    return adapted.eval()
