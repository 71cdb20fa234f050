"""Fitted rows: the new tokens' embedding rows computed from their pieces by one map that every new token
shares, fitted to the domain's own text while the model stays frozen.

A closed-form row (the pieces' mean) starts far from what the model needs: with tied embeddings one
vector must both be read as the token and score it as the next token, and the mean does neither well
(benchmarks/RESULTS.md, "Initialization quality"). Training each row on its own is slow, because a row
learns only from the batches that hold its token, and most of 8,192 new tokens are rare. A map shared by
all new tokens learns from every position of every batch instead. For token t with base pieces
p1..pk (E: the base rows of the matrix),

    row_t = init_t + [mean(E[p1..pk]), E[p1], E[pk], s_t] @ A + b

where ``init_t`` is the row the closed-form initialization wrote, and ``s_t`` holds six numbers about the
token: ln((n_t + 1) / (n_p1 + 1)) (how often its first piece goes on to form it, from the fitting text's
counts), ln(n_t + 1) / 5, k / 3 and its kind (word, subword, phrase) one-hot. ``A`` and ``b`` start at
zero, so step 0 is the closed-form row; they are fitted with Adam on the extended model's next-token loss
over packed blocks of the texts, every model weight frozen. An untied model gets one map per matrix.

    >>> ext = extend("smollm2-135m", tokens, init="mean")               # doctest: +SKIP
    >>> fit_extension(ext, domain_texts, base_tokenizer=tokenizer)       # doctest: +SKIP
    {'version': 'fit.v1', 'steps': 60, ..., 'loss_start': 6.2, 'loss_end': 4.3}

The result is a plain extended model: the map is not saved, only the rows it gives.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

from vocabx.errors import VocabxError

FIT_VERSION = "fit.v1"
KINDS = ("word", "subword", "phrase")


@dataclass(frozen=True)
class FitSettings:
    """How long and how the map is fitted. ``bf16``: autocast to bfloat16 (None: wherever the device has it)."""

    steps: int = 60
    batch_size: int = 4
    block_size: int = 256
    lr: float = 3e-4
    seed: int = 0
    bf16: bool | None = None
    replay: float = 0.25  # share of each batch's sequences drawn from general text, when some is given

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "block_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise VocabxError(f"fit {name} must be a positive integer, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise VocabxError(f"fit lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.replay, (int, float)) and 0 <= self.replay < 1):
            raise VocabxError(f"fit replay (the share of general text in each batch) must be in [0, 1), got {self.replay!r}")


def _blocks(
    texts: Iterable[str], tokenizer: Any, base_tokenizer: Any, settings: FitSettings, share: float = 1.0, what: str = "fitting"
) -> tuple[list[list[int]], Counter, Counter]:
    """Blocks of block_size + 1 ids of the texts (EOS between documents), and token counts under both tokenizers
    (the base tokenizer's left empty when ``base_tokenizer`` is None).

    Reads documents until the blocks hold twice what the steps consume from them (``share`` of every
    batch's sequences; or the texts end): enough text for
    the batches to rarely repeat, and for the counts behind the token features. A list is read in a seeded
    random order, so the blocks come from the whole corpus and not only its first files; any other
    iterable is read in its own order, so a large corpus is never held in memory."""
    if isinstance(texts, (list, tuple)):
        docs = texts
        order = list(range(len(docs)))
        random.Random(settings.seed).shuffle(order)
        texts = (docs[i] for i in order)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise VocabxError("the extended tokenizer has no EOS token to separate documents when fitting rows; set tokenizer.eos_token")
    want = math.ceil(2 * share * settings.steps * settings.batch_size * (settings.block_size + 1))
    stream: list[int] = []
    ext_counts: Counter = Counter()
    base_counts: Counter = Counter()
    batch: list[str] = []

    def flush() -> None:
        if not batch:
            return
        for ids in tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]:
            ext_counts.update(ids)
            stream.extend(ids)
            stream.append(eos)
        if base_tokenizer is not None:  # (None: blocks only, no counts wanted)
            for ids in base_tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]:
                base_counts.update(ids)
        batch.clear()

    for text in texts:
        if text and text.strip():
            batch.append(text)
        if len(batch) >= 64:
            flush()
            if len(stream) >= want:
                break
    flush()
    size = settings.block_size + 1
    blocks = [stream[i : i + size] for i in range(0, len(stream) - size + 1, settings.block_size)]
    if not blocks:
        raise VocabxError(
            f"the {what} texts hold {len(stream)} tokens, fewer than one block of {size}; give more text or a smaller block size"
        )
    return blocks, ext_counts, base_counts


def _features(torch: Any, weight: Any, pieces: list[list[int]], scalars: Any) -> Any:
    """[mean of the pieces' rows, first piece's row, last piece's row, scalars] per new token (float32)."""
    from vocabx.initialize import _pieces_mean

    w = weight.detach()
    first = torch.tensor([p[0] for p in pieces], dtype=torch.long, device=w.device)
    last = torch.tensor([p[-1] for p in pieces], dtype=torch.long, device=w.device)
    return torch.cat([_pieces_mean(w, pieces), w[first].float(), w[last].float(), scalars.to(w.device)], 1)


@dataclass
class _Map:
    """One matrix's map: its rows are ``init + x @ a + b`` (``x``: the tokens' features)."""

    name: str  # the matrix's parameter name, for torch.func.functional_call
    weight: Any
    x: Any
    init: Any
    a: Any
    b: Any

    @classmethod
    def zero(cls, torch: Any, name: str, weight: Any, x: Any, index: Any) -> "_Map":
        a = torch.zeros(x.shape[1], weight.shape[1], device=weight.device, requires_grad=True)
        b = torch.zeros(weight.shape[1], device=weight.device, requires_grad=True)
        return cls(name, weight, x, weight.detach()[index].float().clone(), a, b)

    def rows(self) -> Any:
        return self.init + self.x @ self.a + self.b


def fit_rows(
    model: Any,
    tokenizer: Any,
    base_tokenizer: Any,
    new_ids: list[int],
    pieces: list[list[int]],
    kinds: list[str],
    texts: Iterable[str],
    settings: FitSettings = FitSettings(),
    *,
    general: Iterable[str] | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> dict:
    """Fit the map and write its rows into ``model`` (in place); return a summary.

    ``tokenizer`` is the extended tokenizer, ``base_tokenizer`` the one the pieces come from; ``pieces[i]``
    are the base ids of ``new_ids[i]`` and ``kinds[i]`` its kind. Every other row and weight is unchanged.
    ``on_step(step, loss)`` is called after each optimizer step (the loss is read, so the step has run).
    ``general``: general text (none of the documents the model will be judged on); a ``settings.replay``
    share of each batch's sequences is drawn from it, so the rows also keep the model's behaviour where the
    new tokens fire outside the domain (function-word phrases do). The token statistics come from ``texts``.
    """
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call

    from vocabx.initialize import is_tied

    if not new_ids:
        return {"version": FIT_VERSION, "steps": 0}
    if not (len(new_ids) == len(pieces) == len(kinds)):
        raise VocabxError(f"fit_rows got {len(new_ids)} new ids, {len(pieces)} piece lists and {len(kinds)} kinds; give one of each per new token")
    if any(not p for p in pieces):
        raise VocabxError("every new token needs at least one base piece to fit its row from")
    started = time.monotonic()
    replay = settings.replay if general is not None else 0.0
    blocks, ext_counts, base_counts = _blocks(texts, tokenizer, base_tokenizer, settings, 1 - replay)
    general_blocks = _blocks(general, tokenizer, None, settings, replay, "general")[0] if replay else []
    w_in = model.get_input_embeddings().weight
    device = w_in.device
    tied = is_tied(model)
    names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
    matrices = [w_in] if tied or model.get_output_embeddings() is None else [w_in, model.get_output_embeddings().weight]
    n_t = torch.tensor([float(ext_counts[i]) for i in new_ids])
    n_first = torch.tensor([float(base_counts[p[0]]) for p in pieces])
    scalars = torch.stack(
        [torch.log((n_t + 1) / (n_first + 1)), torch.log(n_t + 1) / 5, torch.tensor([len(p) / 3 for p in pieces])]
        + [torch.tensor([float(k == kind) for k in kinds]) for kind in KINDS],
        1,
    )
    index = torch.tensor(new_ids, dtype=torch.long, device=device)
    maps = [_Map.zero(torch, names[id(w)], w, _features(torch, w, pieces, scalars), index) for w in matrices]
    params = [t for m in maps for t in (m.a, m.b)]
    optimizer = torch.optim.Adam(params, lr=settings.lr)

    bf16 = settings.bf16
    if bf16 is None:
        bf16 = device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported())

    flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    rng = random.Random(settings.seed)
    losses: list[float] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=settings.steps, desc="fitting rows", unit="step")
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        model.eval()  # no dropout: the map is fitted to the model as it will be used
        for step in range(settings.steps):
            batch = torch.tensor([rng.choice(general_blocks if replay and rng.random() < replay else blocks) for _ in range(settings.batch_size)], device=device)
            swapped = {m.name: m.weight.detach().index_put((index,), m.rows().to(m.weight.dtype)) for m in maps}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(bf16)):
                logits = functional_call(model, swapped, args=(), kwargs={"input_ids": batch[:, :-1], "use_cache": False}).logits
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
            if not torch.isfinite(loss):
                raise VocabxError(f"fitting rows: the loss became {loss.item()} at step {step + 1}; lower the fit learning rate (now {settings.lr})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            losses.append(loss.item())
            if on_step is not None:
                on_step(step + 1, losses[-1])
            if bar is not None:
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
                bar.update(1)
        with torch.no_grad():
            for m in maps:
                m.weight[index] = m.rows().to(m.weight.dtype)
    finally:
        if bar is not None:
            bar.close()
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)
    assert is_tied(model) == tied, "fitting rows must not change whether the model is tied"
    head = losses[: min(5, len(losses))]
    tail = losses[-min(5, len(losses)) :]
    summary = {
        "version": FIT_VERSION,
        **{k: v for k, v in asdict(settings).items()},
        "bf16": bool(bf16),
        "replay": replay,
        "blocks": len(blocks),
        "general_blocks": len(general_blocks),
        "tokens_seen": settings.steps * settings.batch_size * settings.block_size,
        "loss_start": round(sum(head) / len(head), 4),
        "loss_end": round(sum(tail) / len(tail), 4),
        "seconds": round(time.monotonic() - started, 1),
    }
    if log:
        log(f"fitted {len(new_ids)} rows in {summary['seconds']} s: loss {summary['loss_start']} -> {summary['loss_end']}")
    return summary


def fit_extension(
    ext: Any,
    texts: Iterable[str],
    *,
    base_tokenizer: Any,
    settings: FitSettings = FitSettings(),
    general: Iterable[str] | None = None,
    progress: bool = False,
    on_step: Callable[[int, float], None] | None = None,
    device: str | None = None,
) -> dict:
    """Fit the rows of an :class:`vocabx.extend.Extension` (its model in place) and record it in its manifest.

    ``general``: general text to replay in each batch; ``on_step(step, loss)`` after each step (see
    :func:`fit_rows`). ``device``: where the fit runs (None: a model on the CPU moves to a GPU when there
    is one, :func:`vocabx.models.place`); the model goes back where it was afterwards."""
    from vocabx.models import place

    if ext.model is None:
        raise VocabxError("this extension has no model (tokenizer only); extend a model to fit its rows")
    pieces = [[base_tokenizer.convert_tokens_to_ids(p) for p in a["pieces"]] for a in ext.added]
    home = place(ext.model, device)
    try:
        summary = fit_rows(
            ext.model, ext.tokenizer, base_tokenizer, [a["id"] for a in ext.added], pieces, [a["kind"] for a in ext.added], texts, settings, general=general, progress=progress, on_step=on_step
        )
    finally:
        if next(ext.model.parameters()).device != home:
            ext.model.to(home)
    ext.manifest.setdefault("init", {})["fit"] = summary
    return summary
