"""The training loop: data order, schedule, row updates, checkpoints, evaluation, and :func:`train` itself.

:func:`train` prepares the output folder (refusing another run's folder, resuming a checkpoint), packs the
corpus into blocks (``vocabx.data``), wraps the model (:mod:`vocabx.train.model`), and runs
:class:`_Run`: Accelerate, AdamW with a cosine schedule, gradient accumulation and clipping, the new
rows' sparse or active updates, evaluation every N steps, Accelerate checkpoints written atomically,
and the export (:mod:`vocabx.train.export`) at the end.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable

from vocabx.errors import VocabxError, VocabxWarning
from vocabx.outputs import json_safe
from vocabx.train.config import MARKER, SCHEMA, TrainConfig, TrainResult, flag, log, on_every_process
from vocabx.train.export import _export, _summary_md, _write_config, _write_merged
from vocabx.train.fused import _enable_fused, _make_step, _use_fast_dropout
from vocabx.train.model import (
    _Rows, _check_not_adapter, _context_length, _rows_of, _split_pieces, _token_layer, _torch, _wrap_peft,
)
from vocabx.train.watchdog import launcher_watchdog


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


_STATE = "vocabx_state.json"


class _Checkpoints:
    """Accelerate states under ``folder/step-NNNNNNNN``, each complete or absent.

    A save goes into a hidden ``.step-N.tmp`` folder, its state file last, and is renamed into place; an
    old checkpoint is renamed to a hidden ``.trash-`` name before it is deleted. A kill at any point so
    leaves whole ``step-N`` folders and hidden leftovers, which :meth:`sweep` deletes at the next start
    (with any ``step-N`` folder that is not complete, as an older vocabx could leave half deleted)."""

    def __init__(self, folder: Path, keep: int) -> None:
        self.folder = folder
        self.keep = keep

    def complete(self) -> list[tuple[int, Path]]:
        found = []
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                match = re.fullmatch(r"step-(\d+)", path.name)
                if match and _is_complete(path):
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
            files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
            # The state file goes in last: a folder without it is an interrupted save.
            (tmp / _STATE).write_text(json.dumps({**state, "files": files}, indent=2) + "\n", encoding="utf-8")
            old = _to_trash(final) if final.exists() else None
            os.replace(tmp, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            for _, path in self.complete()[: -self.keep]:
                _discard(path)
            self.sweep()
        accelerator.wait_for_everyone()
        return final

    def sweep(self) -> None:
        """Delete what an interrupted save or deletion left behind (main process only)."""
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if _is_leftover(path.name):
                shutil.rmtree(path, ignore_errors=True)
            elif re.fullmatch(r"step-\d+", path.name) and path.is_dir() and not _is_complete(path):
                _discard(path)


def _is_complete(path: Path) -> bool:
    """Whether a checkpoint folder holds its state file and every file it lists (a state written by an
    older vocabx lists none: its presence is all there is to go by)."""
    try:
        state = json.loads((path / _STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    files = state.get("files", []) if isinstance(state, dict) else None
    return isinstance(files, list) and all((path / str(name)).is_file() for name in files)


def _is_leftover(name: str) -> bool:
    """A save's temporary folder, a deletion's trash, or an older vocabx's ``step-N.old``."""
    return bool(re.fullmatch(r"\.step-\d+\.tmp|\.trash-.*|step-\d+\.old", name))


def _to_trash(path: Path) -> Path:
    """Rename ``path`` to a hidden trash name: atomic, so the folder leaves the checkpoints whole, and
    a kill while deleting it leaves only trash, never a half-deleted ``step-N``."""
    trash = path.with_name(f".trash-{path.name}-{time.time_ns()}")
    os.replace(path, trash)
    return trash


def _discard(path: Path) -> None:
    shutil.rmtree(_to_trash(path), ignore_errors=True)


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
# (not --max-steps: the learning-rate schedule, warmup included, is built for the run's length)
_RESUMABLE_CHANGES = {"adapter_dtype", "eval_every", "save_every", "keep_checkpoints", "eval_batch_size", "merge", "num_proc", "trackers", "compile", "gradient_checkpointing", "max_eval_docs", "eval_fraction"}


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
        raise VocabxError(f"output folder {out} exists and is not empty; pass --resume to continue its run, --overwrite to replace it (resume=True, overwrite=True in Python), or pick another -o folder")
    check_output_dir(out, overwrite, MARKER, "training run")
    return None


def _fresh_output(out: Path, accelerator: Any) -> None:
    """Empty ``out`` for a new run. Called once the model, the data and the settings have been checked, so
    an --overwrite run that is refused (a block longer than the context, a corpus too small) leaves the
    earlier run in place."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
    accelerator.wait_for_everyone()


def _model_source(spec: str | None) -> dict | None:
    """What a resume compares to know the run's model: a local folder by its files, so that the same
    folder by another path is the same model and one rebuilt in place is not; the embedded model and a
    hub id by name. None for a model object, which has neither."""
    from vocabx.models import local_model_fingerprint

    if spec is None:
        return None
    files = local_model_fingerprint(spec)
    if files is None:
        return {"name": spec}
    return {"path": str(Path(spec).expanduser().resolve()), "files": files}


def _check_resume_model(previous: dict, model: Any, out: Path) -> None:
    """Refuse a resume on another model than the run's: its new-token ids may match the checkpoint's
    rows while its weights are not the ones the checkpoint was trained on."""
    recorded = previous.get("model_source")
    given = _model_source(os.fspath(model)) if isinstance(model, (str, os.PathLike)) else None
    if recorded is None or given is None:
        return  # (a run of an older vocabx, or a model object: nothing to compare; the rows still are)
    if given.get("files") is not None and given.get("files") == recorded.get("files"):
        return
    if given.get("name") is not None and given.get("name") == recorded.get("name"):
        return
    if given.get("path") is not None and given.get("path") == recorded.get("path"):
        raise VocabxError(
            f"--resume with --model {os.fspath(model)!r}: the model folder {given['path']} has changed since the run in {out} "
            "started on it (its files' sizes or times differ), so its checkpoints belong to another model; pass --overwrite to start again on the folder as it is now "
            "(a folder copied without its modification times also differs: copy it with cp -p or rsync -a)"
        )
    started = previous.get("model")
    where = f" ({recorded['path']})" if recorded.get("path") and recorded["path"] != started else ""
    raise VocabxError(
        f"--resume with --model {os.fspath(model)!r}, but the run in {out} was started with --model {started!r}{where}; "
        "pass the same --model, or --overwrite to start again"
    )


def _check_resume(previous: dict, config: TrainConfig, data: dict, rows: _Rows, world: int, out: Path) -> None:
    old = previous.get("config", {})

    def shown(value: Any) -> str:
        return "unset" if value is None else repr(value)

    changed = [
        f"--resume with {flag(name)} {shown(value)}, but the run was started with {shown(old[name])}"
        for name, value in config.as_dict().items()
        if name not in _RESUMABLE_CHANGES and name in old and old[name] != value
    ]
    if changed:
        saved = out / "train_config.yaml"
        also = f", or --config {saved}, which holds the run's settings" if saved.is_file() else ""
        raise VocabxError("; ".join(changed) + f"; pass the same value{'s' if len(changed) > 1 else ''}{also}")
    if previous.get("data", {}).get("fingerprint") != data["fingerprint"]:
        for name in ("eval_fraction", "max_eval_docs"):  # (resumable when eval texts are given; else they split the corpus)
            if name in old and old[name] != getattr(config, name):
                raise VocabxError(
                    f"--resume with {flag(name)} {getattr(config, name)!r}, but the run was started with {old[name]!r}, which moves documents "
                    f"between its training and eval splits; pass {flag(name)} {old[name]!r}"
                )
        raise VocabxError("--resume with a different training corpus than the run was started with; pass the same CORPUS, --eval-fraction and --max-eval-docs")
    if previous.get("data", {}).get("replay_fingerprint") != data.get("replay_fingerprint"):
        raise VocabxError("--resume with different --replay text than the run was started with; pass the same --replay CORPUS (or none, if it had none)")
    if previous.get("extension", {}).get("trainable_ids") != rows.trainable_ids or previous.get("extension", {}).get("embedding_rows") != rows.embedding_rows:
        raise VocabxError("--resume with a different --model than the run was started with; pass the same model folder")
    if previous.get("processes") not in (None, world):
        raise VocabxError(f"--resume on {world} processes, but the run was started on {previous.get('processes')}; the data order depends on it, so launch the same number")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(json_safe(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
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
    """Whether ``step`` (1-based) of ``total`` ends one of ten equal parts of the run; each step when
    there are twenty or fewer (ten parts of 12 steps would skip one step in six, which reads as lost).
    300 steps -> 30, 60, ..., 300."""
    return total <= 20 or step == total or step * 10 // total != (step - 1) * 10 // total


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
    ``output_dir`` from its newest checkpoint. A model object is trained as it is, in its own dtype
    (``mixed_precision="bf16"`` computes in bf16 without casting or rounding its weights; load it in
    bf16 to halve their memory); PEFT puts its layers into it, and the result's ``model`` wraps it.
    ``progress`` shows a progress bar on stderr (None: when
    stderr is a terminal). Runs on as many processes as ``accelerate launch`` started; only the main
    process writes files, and only its result has ``is_main_process``.

    >>> result = vocabx.train("ext", vocabx.read_corpus("corpora/medical"), "adapter", max_steps=20)  # doctest: +SKIP
    >>> result.eval_bpb, result.adapter_bytes                                                         # doctest: +SKIP
    (1.02, 2151480)
    """
    from vocabx.corpus import documents
    from vocabx.extend import Extension

    if isinstance(model, Extension):  # (extend()'s result in memory: its model, tokenizer and new rows)
        tokenizer = tokenizer if tokenizer is not None else model.tokenizer
        if "new_token_ids" not in overrides and (config is None or config.new_token_ids is None) and model.new_ids:
            overrides["new_token_ids"] = list(model.new_ids)
        model = model.model
    config = replace(config or TrainConfig(), **overrides) if overrides else (config or TrainConfig())
    # (read before anything loads: a str, a dataset or a document that is not text is refused at once)
    texts = list(documents(texts, what="texts"))
    eval_texts = None if eval_texts is None else list(documents(eval_texts, what="eval_texts"))
    replay_texts = None if replay_texts is None else list(documents(replay_texts, what="replay_texts"))
    if config.batch_size is None:
        # 8 x 512 tokens in fp32 on CPU would hold about 12 GB of activations for a 135M model.
        config = replace(config, batch_size=8 if _torch().cuda.is_available() else 2)
    out = Path(os.path.abspath(output_dir))
    # (a worker whose launcher was killed stops instead of training on into the folder)
    with launcher_watchdog(str(out)):
        run = _Run(config, out, progress)
        try:
            with on_every_process():  # (the checks of the inputs, which are the same on every process)
                previous = _prepare_output(run.out, resume, overwrite, run.accelerator)
                if previous is not None:
                    _check_resume_model(previous, model, run.out)
                run.load_model(model, tokenizer, trust_remote_code)
                run.load_data(texts, eval_texts, previous, replay_texts)
            run.build()
            if previous is None:
                _fresh_output(run.out, run.accelerator)
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
        """The model and tokenizer; frozen weights loaded in bf16 when training in bf16 (not in full mode).
        A model object keeps its dtype: casting it would round the caller's weights for good."""
        torch = _torch()
        from accelerate.utils import set_seed

        from vocabx.models import load_model, load_tokenizer

        set_seed(self.config.seed)
        frozen_bf16 = self.precision == "bf16" and self.config.mode != "full"
        self.spec = None
        if isinstance(model, (str, os.PathLike)):
            self.spec = os.fspath(model)
            _check_not_adapter(self.spec)
            tokenizer = tokenizer or load_tokenizer(self.spec, trust_remote_code=trust_remote_code)
            model = load_model(self.spec, dtype=torch.bfloat16 if frozen_bf16 else None, trust_remote_code=trust_remote_code)
        elif tokenizer is None:
            raise VocabxError("train() got a model object but no tokenizer; pass tokenizer=")
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
        if config.embedding_warmup_steps >= self.max_steps:  # (an explicit --max-steps is checked with the flags)
            raise VocabxError(
                f"--embedding-warmup-steps {config.embedding_warmup_steps} leaves no LoRA steps: one pass over this corpus is "
                f"{self.max_steps} steps; lower it or pass a larger --max-steps"
            )
        if config.warmup_steps is not None and config.warmup_steps >= self.max_steps:  # (likewise)
            raise VocabxError(
                f"--warmup-steps {config.warmup_steps} leaves no steps at the peak learning rate: one pass over this corpus is "
                f"{self.max_steps} steps; lower it or pass a larger --max-steps"
            )
        self.warmup = config.warmup_steps if config.warmup_steps is not None else round(0.05 * self.max_steps)
        self.held = held
        self.train_docs = len(train_docs)
        self.data = {**packed.as_dict(), "train_docs": len(train_docs), "eval_docs": len(held), "fingerprint": _fingerprint(train_docs, self.tokenizer, config.block_size, eos_id(self.tokenizer)), **replay_data, **split_data}
        if previous is not None:
            _check_resume(previous, config, self.data, self.rows, self.world, self.out)
        if not held:
            warnings.warn("no documents held out for evaluation (--eval-fraction 0 or a one-document corpus); eval_bpb will be null", VocabxWarning, stacklevel=3)

    def build(self) -> None:
        """PEFT wrapping, the fused step (when it matches), optimizer groups, schedule, Accelerate."""
        try:
            with on_every_process():  # (a refused --lora-targets; not out of memory, which one process may meet alone)
                self._build()
        except Exception as exc:
            if _is_oom(exc):
                if self.config.mode == "full":
                    hint = "--mode lora+tokens trains far fewer weights, or "
                else:
                    hint = "pass --mixed-precision bf16 to hold the frozen weights in bf16, or " if self.precision != "bf16" else ""
                raise VocabxError(
                    f"out of memory preparing the model on {self.accelerator.device.type}, before the first step (no batch of --batch-size {self.config.batch_size} has run yet): "
                    f"the model and its trained weights do not fit; {hint}use a device with more memory"
                ) from exc
            raise

    def _build(self) -> None:
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
        if self.main:
            self.checkpoints.sweep()
        self.accelerator.wait_for_everyone()
        self.log_path = self.out / "log.jsonl"
        self.step, self.tokens_seen, self.train_seconds = 0, 0, 0.0
        if previous is not None:
            newest = self.checkpoints.newest()
            assert newest is not None
            self.accelerator.load_state(str(newest[1]))
            state = json.loads((newest[1] / _STATE).read_text(encoding="utf-8"))
            self.step, self.tokens_seen, self.train_seconds = state["step"], state["tokens"], state["train_seconds"]
            if self.log_path.is_file():
                records = map(json.loads, self.log_path.read_text(encoding="utf-8").splitlines())
                self.history = [r for r in records if r.get("step", 0) <= self.step]
            self.note(f"resuming {self.out} from step {self.step}")
        self.record = {
            "schema": SCHEMA,
            "status": "running",
            "model": self.spec,
            "model_source": _model_source(self.spec),
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
            _write_config(self.out, config)
            self.log_path.write_text("".join(json.dumps(json_safe(r)) + "\n" for r in self.history), encoding="utf-8")
            if self.trackers:
                flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in config.as_dict().items()}
                self.accelerator.init_trackers("vocabx", config=flat)
            self.note(
                f"training {self.spec or type(self.model).__name__} ({config.mode}, {self.n_trainable:,} trained parameters) on "
                f"{self.blocks.shape[0]:,} blocks of {config.block_size} tokens from {self.train_docs:,} documents; {len(self.held):,} eval document{'' if len(self.held) == 1 else 's'}"
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
                    raise VocabxError(f"the loss became {mean_loss} at step {self.step + 1}; training stopped and {self._kept()}; lower --lr or --embedding-lr, or check the data")
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
                with_grad = [p for p in self.trained.values() if p.grad is not None]
                if config.max_grad_norm > 0:
                    grad_norm = float(accelerator.clip_grad_norm_(with_grad, config.max_grad_norm))
                else:  # (measured anyway: a non-finite gradient must stop the run before the step applies it)
                    grad_norm = float(torch.nn.utils.get_total_norm([p.grad for p in with_grad])) if with_grad else 0.0
                if not math.isfinite(grad_norm):
                    raise VocabxError(f"the gradient became {grad_norm} at step {self.step + 1} (loss {mean_loss:.4f}); training stopped before applying it and {self._kept()}; lower --lr or --embedding-lr, or check the data")
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

    def _kept(self) -> str:
        """What a run stopped by a bad step leaves: the newest checkpoint, if any."""
        kept = self.checkpoints.newest()
        return f"the last checkpoint, {kept[1]}, is kept" if kept else "no checkpoint was written yet"

    def evaluate(self) -> None:
        try:
            self.last_eval = _evaluate(self.accelerator, self.peft_model, self.tokenizer, self.held, self.config)
        except Exception as exc:
            if _is_oom(exc):
                kept = self.checkpoints.newest()
                then = f"; --resume with a smaller value finishes the run from {kept[1]}" if kept else ""
                raise VocabxError(
                    f"out of memory evaluating after step {self.step} with --eval-batch-size {self.config.eval_batch_size} "
                    f"x --block-size {self.config.block_size}: lower --eval-batch-size{then}"
                ) from exc
            raise
        # (a resumed run that had already finished scores its last step again: one record of it is enough)
        logged = any(r.get("type") == "eval" and r.get("step") == self.step for r in self.history)
        if self.last_eval and not logged:
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
            # (this session's rate; a resume of a finished run trained nothing now: the whole run's rate)
            "tokens_per_second": round(self.session_tokens / self.session_seconds, 1) if self.session_seconds
            else round(self.tokens_seen / self.train_seconds, 1) if self.train_seconds else None,
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
                handle.write(json.dumps(json_safe(entry)) + "\n")
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
