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
bf16 autocast on GPU (frozen weights loaded in bf16, trained ones in fp32; a model object passed in keeps
its dtype) and fp32 on CPU (where
``mixed_precision="bf16"`` does the same, and is over twice as fast on CPUs with AVX512-BF16 or AMX);
optional gradient checkpointing and ``torch.compile``. Data order is a pure function of the seed and the step
(a fresh permutation of the blocks per epoch, each process taking its slice), so a resumed run reads
exactly the batches an uninterrupted one would. Checkpoints are Accelerate states holding only the
trained weights, written into a temporary folder and renamed, the last ``keep_checkpoints`` kept (an old
one is renamed to hidden trash before it is deleted, and a run starts by sweeping what a kill left). A
resume refuses another model than the run's: a local folder is compared by its files, a hub id by name.

The output folder (the adapter) holds ``adapter_model.safetensors`` (LoRA and the new rows only), the
tokenizer, ``extension_rows.safetensors`` (rows of the extended matrix the adapter does not hold, such
as padding rows, so that :func:`load_adapted` can rebuild the model from its base), ``vocabx_train.json``
(schema ``vocabx.train/1``: config, data, metrics) with its readable twin ``train.md``,
``train_config.yaml`` (reusable with ``--config``; written as the run starts, so that a ``--resume`` can
take the run's settings from it), ``log.jsonl`` and ``checkpoints/``. A tied model's new rows serve both
sides and are stored once; with ``--mode tokens``, plain PEFT then warns that the output layer's
``trainable_tokens_delta`` is missing, and ties it to the input layer's as it loads (the logits are the
trained ones; :func:`load_adapted` expects it and says nothing).

The package's modules: :mod:`~vocabx.train.config` (the settings and their flags),
:mod:`~vocabx.train.model` (the new rows and the PEFT model), :mod:`~vocabx.train.fused` (the row-sparse
step and fused loss), :mod:`~vocabx.train.loop` (:func:`train` and the loop),
:mod:`~vocabx.train.export` (the adapter folder, :func:`load_adapted`) and
:mod:`~vocabx.train.watchdog` (a worker of ``accelerate launch`` stops when its launcher is killed).

What it leaves out: quantized (QLoRA) training, FSDP/DeepSpeed sharding, and evaluation beyond the
held-out loss and bits per byte (``vocabx evaluate``).
"""

from __future__ import annotations

from vocabx.train.config import (
    MARKER, MODES, ROWS_FILE, ROWS_UPDATES, SCHEMA, TrainConfig, TrainResult, add_config_flags, config_from_args,
    on_every_process, parse_ids,
)
from vocabx.train.export import load_adapted, read_run
from vocabx.train.fused import fused_linear_cross_entropy
from vocabx.train.loop import lr_factor, milestone, train

__all__ = [
    "MARKER", "MODES", "ROWS_FILE", "ROWS_UPDATES", "SCHEMA", "TrainConfig", "TrainResult", "add_config_flags",
    "config_from_args", "fused_linear_cross_entropy", "load_adapted", "lr_factor", "milestone", "on_every_process", "parse_ids",
    "read_run", "train",
]
