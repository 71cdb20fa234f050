"""The row-sparse training step: new input rows swapped in, the output layer fused with the loss.

:func:`fused_linear_cross_entropy` computes the cross-entropy of ``hidden @ weight.T`` in chunks of
positions, forming each chunk's logits once and its gradients in the same pass, so the whole
``tokens x vocabulary`` logits never exist; with ``rows_update="active"`` it also sums each new row's
probability. :func:`_make_step` builds the step module that runs the model this way;
:func:`_enable_fused` checks it against PEFT's own forward on one batch and falls back to the plain
forward where they differ.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from vocabx.errors import VocabxWarning
from vocabx.train.model import _token_layer, _torch


@dataclass
class _Side:
    """One embedding matrix as the fused step sees it: the frozen (or full-mode) weight and the new rows."""

    weight: Any
    delta: Any = None  # (n_new, hidden) parameter, or None
    ids: Any = None  # LongTensor of the rows delta replaces
    lookup: Any = None  # LongTensor (rows,): position in delta, or -1


def _side(module: Any) -> _Side | None:
    torch = _torch()
    from peft.tuners.tuners_utils import BaseTunerLayer

    layer = _token_layer(module)
    if isinstance(module, BaseTunerLayer) and module is not layer:
        return None  # LoRA on the embedding or output layer (--lora-targets lm_head): the plain forward runs it
    if layer is not None and isinstance(layer.base_layer, BaseTunerLayer):
        return None
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
