"""What shapes a training run: :class:`TrainConfig`, its command-line flags and YAML file, and the result.

Each field of :class:`TrainConfig` is a ``--flag`` of ``vocabx train`` (:func:`add_config_flags`) and a key
of its ``--config`` YAML file; :func:`config_from_args` reads defaults < file < flags and validates the
whole config at once. :class:`TrainResult` is what :func:`vocabx.train.train` returns.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import numbers
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

from vocabx.errors import VocabxError


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
        problems: list[tuple[str | None, str]] = []  # (the setting at fault, when it is one alone; the message)

        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                problems.append((name, f"{flag(name)} must be {what}, got {getattr(self, name)!r}"))

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_num(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        if not isinstance(self.new_token_ids, (str, type(None))) and hasattr(self.new_token_ids, "__iter__"):
            # (the Python API's list of ids, such as Extension.new_ids or a numpy array: the flag's form)
            ids = list(self.new_token_ids)
            if ids and all(isinstance(i, numbers.Integral) and not isinstance(i, bool) and i >= 0 for i in ids):
                self.new_token_ids = format_ids([int(i) for i in ids])
            else:
                problems.append(("new_token_ids", f"--new-token-ids must be token ids (ints >= 0) or ranges such as '49152-49200', got {str(ids)[:80]}"))
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
        if isinstance(self.new_token_ids, str):
            try:
                parse_ids(self.new_token_ids)
            except VocabxError as exc:
                problems.append(("new_token_ids", str(exc)))
        if self.merge is True and self.mode == "full":
            problems.append((None, "--merge merges LoRA into the model, but --mode full trains no LoRA and already writes the whole model into OUTPUT; drop --merge"))
        if (
            is_int(self.embedding_warmup_steps) and self.embedding_warmup_steps
            and self.mode != "lora+tokens"
        ):
            problems.append((None, f"--embedding-warmup-steps needs --mode lora+tokens (it trains the rows first, then adds LoRA), got --mode {self.mode}"))
        if (
            is_int(self.embedding_warmup_steps) and is_int(self.max_steps)
            and self.max_steps is not None and self.max_steps >= 1 and self.embedding_warmup_steps >= self.max_steps
        ):
            problems.append((None, f"--embedding-warmup-steps {self.embedding_warmup_steps} leaves no LoRA steps within --max-steps {self.max_steps}"))
        if is_int(self.warmup_steps) and is_int(self.max_steps) and self.max_steps >= 1 and self.warmup_steps >= self.max_steps:
            problems.append((None, f"--warmup-steps {self.warmup_steps} leaves no steps at the peak learning rate within --max-steps {self.max_steps}; lower it (default: 5% of the steps)"))
        if problems:
            error = VocabxError("; ".join(message for _, message in problems))
            error.problems = problems  # type: ignore[attr-defined]  (from_file names the file of a value it set)
            raise error

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
        known = {f.name: f for f in fields(cls)}
        settings: dict[str, Any] = {}
        for key, value in data.items():
            name = str(key).replace("-", "_")
            if name in settings:
                raise VocabxError(f"--config {os.fspath(path)!r} sets {name!r} twice (as {key!r} too); keep one")
            settings[name] = value
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise VocabxError(f"--config {os.fspath(path)!r}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        for name, value in settings.items():
            settings[name] = _from_yaml(name, value, known[name].default)
        try:
            return cls(**{**settings, **overrides})
        except VocabxError as exc:
            from_file = set(settings) - set(overrides)
            where = f" (set in --config {os.fspath(path)!r})"
            problems = getattr(exc, "problems", [(None, str(exc))])
            raise VocabxError("; ".join(message + (where if name in from_file else "") for name, message in problems)) from exc


def _from_yaml(name: str, value: Any, default: Any) -> Any:
    """A YAML value as the setting's type: YAML 1.1 reads ``1e-3`` as a string (it wants ``1.0e-3``) and
    ``no`` as false, where a setting means the number 0.001 and the word no; a list of a comma-separated
    setting is its items joined (``[q_proj, v_proj]`` -> ``'q_proj,v_proj'``)."""
    if isinstance(value, list) and name in ("lora_targets", "new_token_ids") and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    if isinstance(value, str) and isinstance(default, float):
        try:
            return float(value)
        except ValueError:
            return value  # (the setting's own check names it)
    if isinstance(value, bool) and isinstance(default, str):
        return "yes" if value else "no"  # (mixed_precision: no, compile: yes)
    return value


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


def format_ids(ids: list[int]) -> str:
    """The inverse of :func:`parse_ids`: [600, 601, 602, 605, 607] -> '600-602,605,607'"""
    parts: list[str] = []
    ids = sorted(set(ids))
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[i - 1] + 1:
            first, last = ids[start], ids[i - 1]
            parts.append(str(first) if first == last else f"{first}-{last}")
            start = i
    return ",".join(parts)


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


@contextlib.contextmanager
def on_every_process() -> Iterator[None]:
    """Mark a :class:`VocabxError` raised in the block as one that every process of an ``accelerate launch``
    run raises alike (bad input, a refused resume: each process checks the same things), so the command
    says it once, from the main process. An error one process may meet alone (out of memory) is left
    unmarked: each process that meets it says it."""
    try:
        yield
    except VocabxError as exc:
        exc.on_every_process = True  # type: ignore[attr-defined]
        raise


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
