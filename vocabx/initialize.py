"""Embeddings for newly added tokens: a registry of initialization strategies, and writing them into a model.

Each strategy is a small pure function with a versioned name (``mean.v1``), so a saved ``vocabx.json`` that
says ``mean.v1`` keeps meaning the same numbers after the default moves on; users pick strategies by their
short names (``mean``), which map to the current version:

- ``mean_shift`` (the default): the pieces' mean, moved against the model's mean final hidden state so
  that each new token's logit starts :func:`shift_nats` (N) nats below the mean of its pieces' logits in
  an average context (3.1 for 8,192 new tokens, 2 for 1,024 and fewer). Without it, 8,192 new rows that
  each score like their pieces take about 28% of the probability mass at every position of ordinary
  text (measured on smollm2-135m, ``benchmarks/bench_init_breakdown.py``);
- ``mean``: the mean of the base pieces' rows (the tokens the new token replaces);
- ``mean_norm``: that mean rescaled to the pieces' average row norm, since averaging shrinks the norm;
- ``interpolate``: ``INTERPOLATE_ALPHA * pieces_mean + (1 - INTERPOLATE_ALPHA) * global_mean``;
- ``hewitt``: the global mean plus noise from N(0, HEWITT_SCALE * Σ), Σ the rows' covariance (Hewitt 2021,
  "Initializing New Word Embeddings for Pretrained Language Models"): the new token's logit then stays
  close to the average logit, so the model does not start emitting it everywhere;
- ``random``: N(0, std²) with the model's own init std (``config.initializer_range``, else the matrix's
  std), the recipe ``resize_token_embeddings(mean_resizing=False)`` follows; kept for comparison.

A strategy gets the base rows of one matrix (``weight``, the trained tokens' rows; global statistics are
taken over all of them), the base pieces of each new token, and a seeded ``torch.Generator``; it returns
the new rows in ``weight.dtype``, computed in float32. :func:`initialize_new_rows` calls it once for the
input matrix, and once more for the output matrix when the model does not tie them.

What it leaves out: choosing the new tokens and their pieces (the extender's job), output-layer biases
(Llama, Mistral and Qwen have none), and training.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from typing import Any, Callable

import torch

from vocabx.errors import VocabxError

Initializer = Callable[..., torch.Tensor]

INTERPOLATE_ALPHA = 0.5
"""Weight of the pieces' mean in ``interpolate``; the rest goes to the global mean.

An untuned midpoint. A better value found by measurement becomes ``interpolate.v2``, so that saved
extensions naming ``interpolate.v1`` keep their meaning.
"""

MEAN_SHIFT_TOKENS = 384
"""``mean_shift`` lowers each new token's logit by ``ln(N / MEAN_SHIFT_TOKENS)`` nats for N new tokens, and by
at least ``MEAN_SHIFT_FLOOR`` (``mean_shift.v1``: none below that many tokens): the mass the new rows take
grows with N, so the shift that balances it does too.

Fitted on ``benchmarks/bench_init.py``'s grids on smollm2-135m and MedQuAD: the best shift for domain
text was 1 nat at N = 1,024 and 2 at 8,192, for general text 3 or more and 4; ln(N / 384) gives 1.0 and
3.1, the domain's best at 1,024 and within a point of both bests at 8,192.
"""

MEAN_SHIFT_FLOOR = 2.0
"""The least shift of ``mean_shift.v2``, in nats. With 1,024 tokens ranked against general text and
cohesive phrases (the settings for a model that must stay general), 2 nats instead of v1's 0.98 took
general text from +2.01% / +1.92% to +1.74% / +1.51% of the base's bits per byte (MedQuAD's tokens /
CUAD's, 48 + 48 documents) for 0.5 and 1.0 points of the domains' (``benchmarks/RESULTS.md``). An
extension used without training is most often asked not to break ordinary text.
"""

MEAN_SHIFT_NATS: float | None = None
"""A fixed shift in nats for every N instead of the rules above (None: the rules); benchmarks set it."""


def shift_nats(n_new: int, floor: float = 0.0) -> float:
    """The logit shift ``mean_shift`` applies for ``n_new`` new tokens, at least ``floor``: 1,024 -> 0.98,
    8,192 -> 3.06 (``mean_shift.v1``, floor 0); with ``MEAN_SHIFT_FLOOR`` (``mean_shift.v2``) 1,024 -> 2."""
    if MEAN_SHIFT_NATS is not None:
        return float(MEAN_SHIFT_NATS)
    return max(floor, math.log(n_new / MEAN_SHIFT_TOKENS))


HEWITT_SCALE = 1e-5
"""Factor on the embedding covariance for ``hewitt``'s noise: the value in the code of Hewitt's post."""

INITIALIZERS: dict[str, Initializer] = {}
ALIASES: dict[str, str] = {}


def register(name: str) -> Callable[[Initializer], Initializer]:
    """Add a strategy under its versioned name; its short name points at the latest version registered."""

    def add(fn: Initializer) -> Initializer:
        short, _, version = name.rpartition(".v")
        assert short and version.isdigit(), f"initializer names look like 'mean.v1', got {name!r}"
        INITIALIZERS[name] = fn
        ALIASES[short] = name
        return fn

    return add


def resolve_init(name: str) -> str:
    """The versioned name of a strategy given by short or versioned name.

    ``"mean"`` -> ``"mean.v1"``, ``"hewitt.v1"`` -> ``"hewitt.v1"``.
    """
    if name in INITIALIZERS:
        return name
    if name in ALIASES:
        return ALIASES[name]
    accepted = ", ".join(sorted(ALIASES) + sorted(INITIALIZERS))
    raise VocabxError(f"unknown init strategy {name!r} (--init); accepted: {accepted}")


# ---------------------------------------------------------------------------------------------------
# Strategies


def _piece_rows(weight: torch.Tensor, pieces: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The pieces' rows in float32, stacked, and for each stacked row the index of its new token.

    ``pieces=[[4, 7], [9]]`` -> (rows 4, 7 and 9 of ``weight``, ``tensor([0, 0, 1])``).
    """
    flat = torch.tensor([i for p in pieces for i in p], dtype=torch.long, device=weight.device)
    lengths = torch.tensor([len(p) for p in pieces], device=weight.device)
    owner = torch.repeat_interleave(torch.arange(len(pieces), device=weight.device), lengths)
    return weight[flat].float(), owner


def _segment_mean(values: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
    """Mean of ``values`` rows grouped by ``owner``: rows [a, b, c], owner [0, 0, 1] -> [(a+b)/2, c]."""
    total = torch.zeros((n, *values.shape[1:]), dtype=values.dtype, device=values.device)
    total.index_add_(0, owner, values)
    counts = torch.bincount(owner, minlength=n).to(values.dtype)
    return total / counts.view(-1, *([1] * (values.dim() - 1)))


def _pieces_mean(weight: torch.Tensor, pieces: list[list[int]]) -> torch.Tensor:
    rows, owner = _piece_rows(weight, pieces)
    return _segment_mean(rows, owner, len(pieces))


def _noise(generator: torch.Generator, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    # Drawn on the generator's device and then moved, so one seed gives the same rows on CPU and GPU.
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


@register("mean.v1")
def mean_v1(weight: torch.Tensor, pieces: list[list[int]], *, generator: torch.Generator) -> torch.Tensor:
    """Each new row is the mean of its pieces' rows: pieces [[4, 7]] -> [(w[4] + w[7]) / 2]."""
    return _pieces_mean(weight, pieces).to(weight.dtype)


def _mean_shift(weight: torch.Tensor, pieces: list[list[int]], hidden_mean: torch.Tensor | None, floor: float) -> torch.Tensor:
    rows = _pieces_mean(weight, pieces)
    if hidden_mean is not None:
        h = hidden_mean.to(device=rows.device, dtype=torch.float32)
        rows = rows - shift_nats(len(pieces), floor) * h / (h @ h).clamp_min(torch.finfo(torch.float32).tiny)
    return rows.to(weight.dtype)


@register("mean_shift.v1")
def mean_shift_v1(
    weight: torch.Tensor, pieces: list[list[int]], *, generator: torch.Generator, hidden_mean: torch.Tensor | None = None
) -> torch.Tensor:
    """The pieces' mean minus ``shift_nats(len(pieces)) * hidden_mean / |hidden_mean|²``.

    ``hidden_mean`` is the mean input of the output layer over some text (:func:`hidden_mean`), so the
    logit ``h @ row`` drops by ``shift_nats(N)`` where ``h`` is that mean and by about as much in most
    contexts (final hidden states share a large common component). Without ``hidden_mean`` (the input
    matrix of an untied model, which produces no logits) the rows are the plain mean.
    """
    return _mean_shift(weight, pieces, hidden_mean, 0.0)


@register("mean_shift.v2")
def mean_shift_v2(
    weight: torch.Tensor, pieces: list[list[int]], *, generator: torch.Generator, hidden_mean: torch.Tensor | None = None
) -> torch.Tensor:
    """``mean_shift.v1`` with a shift of at least ``MEAN_SHIFT_FLOOR`` nats (v1: none below 384 tokens)."""
    return _mean_shift(weight, pieces, hidden_mean, MEAN_SHIFT_FLOOR)


@register("mean_norm.v1")
def mean_norm_v1(weight: torch.Tensor, pieces: list[list[int]], *, generator: torch.Generator) -> torch.Tensor:
    """The pieces' mean, rescaled to the pieces' average L2 norm.

    Rows [3, 0] and [0, 4] have mean [1.5, 2] (norm 2.5) and average norm 3.5 -> [2.1, 2.8].
    """
    rows, owner = _piece_rows(weight, pieces)
    mean = _segment_mean(rows, owner, len(pieces))
    target = _segment_mean(rows.norm(dim=1), owner, len(pieces))
    # Pieces that cancel exactly give a zero mean; it stays zero rather than dividing by zero.
    scale = target / mean.norm(dim=1).clamp_min(torch.finfo(torch.float32).tiny)
    return (mean * scale[:, None]).to(weight.dtype)


@register("interpolate.v1")
def interpolate_v1(weight: torch.Tensor, pieces: list[list[int]], *, generator: torch.Generator) -> torch.Tensor:
    """``INTERPOLATE_ALPHA`` * the pieces' mean + the rest * the mean of all rows of ``weight``."""
    global_mean = weight.float().mean(dim=0)
    mixed = INTERPOLATE_ALPHA * _pieces_mean(weight, pieces) + (1 - INTERPOLATE_ALPHA) * global_mean
    return mixed.to(weight.dtype)


@register("hewitt.v1")
def hewitt_v1(weight: torch.Tensor, pieces: list[list[int]], *, generator: torch.Generator) -> torch.Tensor:
    """The mean of all rows plus noise from N(0, ``HEWITT_SCALE`` * Σ), Σ the rows' covariance.

    The pieces only set how many rows to draw. Σ is factored by eigendecomposition rather than Cholesky
    because a matrix with fewer rows than columns (or collinear rows) has a singular covariance.
    """
    rows = weight.float()
    mu = rows.mean(dim=0)
    centered = rows - mu
    sigma = centered.T @ centered / rows.shape[0]
    eigenvalues, eigenvectors = torch.linalg.eigh(sigma)
    root = eigenvectors * eigenvalues.clamp_min(0).sqrt()  # root @ root.T == sigma
    z = _noise(generator, (len(pieces), rows.shape[1]), weight.device)
    return (mu + math.sqrt(HEWITT_SCALE) * z @ root.T).to(weight.dtype)


@register("random.v1")
def random_v1(
    weight: torch.Tensor, pieces: list[list[int]], *, generator: torch.Generator, std: float | None = None
) -> torch.Tensor:
    """Rows from N(0, std²); ``std`` defaults to the std of ``weight``'s entries.

    :func:`initialize_new_rows` passes the model's ``config.initializer_range`` as ``std``, so the rows
    match what ``resize_token_embeddings(mean_resizing=False)`` would have drawn.
    """
    if std is None:
        std = weight.float().std().item()
    return (std * _noise(generator, (len(pieces), weight.shape[1]), weight.device)).to(weight.dtype)


# ---------------------------------------------------------------------------------------------------
# Writing rows into a model


def hidden_mean(model: Any, pieces: list[list[int]], *, max_tokens: int = 4096, window: int = 1024) -> torch.Tensor:
    """The mean input of the model's output layer (its final hidden state) over the new tokens' own pieces.

    The pieces, concatenated, are the probe text: the domain's words and phrases, no corpus needed.
    Captured by a hook on the output layer, so any causal LM works; run in eval mode without gradients.
    """
    out = model.get_output_embeddings()
    if out is None:
        raise VocabxError(f"{type(model).__name__} has no output layer; use --init mean")
    ids = [i for p in pieces for i in p][:max_tokens]
    start = getattr(model.config, "bos_token_id", None)
    # A chunk (with its BOS) must fit the model's positions: GPT-2's 1,024 learned positions end at 1,023.
    from vocabx.models import config_context

    context = config_context(model.config)
    if context is not None:
        window = max(1, min(window, context - (1 if isinstance(start, int) else 0)))
    device = model.get_input_embeddings().weight.device
    total, count = None, 0
    captured: list[torch.Tensor] = []
    hook = out.register_forward_hook(lambda module, args, output: captured.append(args[0].detach()))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(ids), window):
                chunk = ([start] if isinstance(start, int) else []) + ids[i : i + window]
                captured.clear()
                model(input_ids=torch.tensor([chunk], device=device), use_cache=False)
                h = captured[-1].reshape(-1, captured[-1].shape[-1]).float()
                h = h[1:] if isinstance(start, int) else h  # the BOS context token is not domain text
                total = h.sum(0) if total is None else total + h.sum(0)
                count += h.shape[0]
    finally:
        hook.remove()
        model.train(was_training)
    return total / count


def is_tied(model: Any) -> bool:
    """Whether the model's output matrix is its input matrix (one tensor, so one write updates both)."""
    out = model.get_output_embeddings()
    if out is None:
        return False
    w_in, w_out = model.get_input_embeddings().weight, out.weight
    return w_out is w_in or (w_out.shape == w_in.shape and w_out.data_ptr() == w_in.data_ptr())


def embedding_rows(model: Any) -> int:
    """The number of rows of the input embedding matrix (which may exceed the tokenizer's length)."""
    return model.get_input_embeddings().weight.shape[0]


def resize_for_new_tokens(model: Any, n_tokens_needed: int, *, pad_to_multiple_of: int | None = None) -> int:
    """Grow the input (and untied output) embeddings to at least ``n_tokens_needed`` rows; return the rows.

    Never shrinks: a matrix already padded beyond the tokenizer (Qwen's 151,936 rows for 151,665 tokens)
    is kept, and its padding rows take the first new tokens. With ``pad_to_multiple_of`` a growing matrix
    is rounded up: 49,160 needed, multiple 64 -> 49,216 rows. Tying is kept.
    """
    problems = []
    if isinstance(n_tokens_needed, bool) or not isinstance(n_tokens_needed, int) or n_tokens_needed < 1:
        problems.append(f"n_tokens_needed must be a positive int, got {n_tokens_needed!r}")
    if pad_to_multiple_of is not None and (
        isinstance(pad_to_multiple_of, bool) or not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1
    ):
        problems.append(f"--pad-to-multiple-of must be a positive int, got {pad_to_multiple_of!r}")
    if problems:
        raise VocabxError("; ".join(problems))
    rows = embedding_rows(model)
    out = model.get_output_embeddings()
    out_rows = rows if out is None else out.weight.shape[0]
    if min(rows, out_rows) >= n_tokens_needed:
        return rows
    new_size = max(n_tokens_needed, rows)
    if pad_to_multiple_of:
        new_size = -(-new_size // pad_to_multiple_of) * pad_to_multiple_of
    tied = is_tied(model)
    model.resize_token_embeddings(new_size, mean_resizing=False)
    if tied and not is_tied(model):
        raise VocabxError(
            "resizing the embeddings untied the model's input and output matrices; "
            "call model.tie_weights() or report this model class to vocabx"
        )
    return embedding_rows(model)


def _is_id(value: Any, limit: int) -> bool:
    """Whether ``value`` is an integer id in ``0..limit-1`` (numpy integers count; bools do not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value < limit


def _validate(new_ids: Any, pieces: Any, rows: int) -> int:
    """Check ids and pieces against a matrix of ``rows`` rows; return the number of base rows.

    New tokens sit after the base vocabulary, so the base rows are those below the smallest new id.
    """
    problems: list[str] = []
    if len(new_ids) != len(pieces):
        raise VocabxError(
            f"got {len(new_ids)} new ids but {len(pieces)} piece lists; pass one list of base pieces per new id"
        )
    bad_ids = [i for i in new_ids if not _is_id(i, rows)]
    if bad_ids:
        problems.append(
            f"new ids {bad_ids[:5]} are outside the embedding matrix of {rows} rows; "
            "call resize_for_new_tokens(model, len(tokenizer)) first"
        )
    dup = [] if bad_ids else sorted(i for i, n in Counter(new_ids).items() if n > 1)
    if dup:
        problems.append(f"new ids {dup[:5]} appear more than once; give each new token one id")
    if problems:
        raise VocabxError("; ".join(problems))
    n_base = min(new_ids)
    for token_id, ids in zip(new_ids, pieces):
        if not isinstance(ids, (list, tuple)) or not ids:
            problems.append(f"new id {token_id} has pieces {ids!r}; pass a non-empty list of base token ids")
        elif not all(_is_id(i, n_base) for i in ids):
            problems.append(
                f"new id {token_id} has pieces {list(ids)!r} outside the base vocabulary 0..{n_base - 1}; "
                "pieces are the base tokenizer's ids of the new token's text"
            )
        if len(problems) >= 5:
            break
    if problems:
        raise VocabxError("; ".join(problems))
    return n_base


def initialize_new_rows(
    model: Any, new_ids: list[int], pieces: list[list[int]], strategy: str = "mean", *, seed: int = 0
) -> dict[str, Any]:
    """Fill rows ``new_ids`` of the model's embeddings from the new tokens' base ``pieces``; return a summary.

    The base vocabulary is every row below ``min(new_ids)``; pieces must lie in it. The input matrix is
    written from its own base rows and, when the model does not tie them, the output matrix from its own
    base rows (the two differ in an untied model); a tied model is written once and stays tied. Rows
    outside ``new_ids`` are untouched.

    >>> pieces = tokenizer(" hepatosplenomegaly", add_special_tokens=False)["input_ids"]  # smollm2-135m
    >>> resize_for_new_tokens(model, 49153, pad_to_multiple_of=64)                   # doctest: +SKIP
    49216
    >>> initialize_new_rows(model, [49152], [pieces], "mean_norm")                   # doctest: +SKIP
    {'strategy': 'mean_norm.v1', 'n': 1, 'tied': True, 'new_norm': 2.927876, 'base_norm': 3.202241}
    """
    name = resolve_init(strategy)
    fn = INITIALIZERS[name]
    new_ids, pieces = list(new_ids), list(pieces)
    tied = is_tied(model)
    w_in = model.get_input_embeddings().weight
    summary: dict[str, Any] = {"strategy": name, "n": len(new_ids), "tied": tied}
    if not new_ids:
        return summary
    n_base = _validate(new_ids, pieces, w_in.shape[0])
    options: dict[str, Any] = {}
    if name.startswith("random."):
        # The one strategy that reads the config: the init std the model was built with.
        options["std"] = getattr(model.config, "initializer_range", None)
    output_options: dict[str, Any] = {}
    if name.startswith("mean_shift."):
        # Only the rows that produce logits move: the tied matrix, or an untied model's output matrix.
        output_options["hidden_mean"] = hidden_mean(model, pieces)
        summary["hidden_mean_norm"] = round(output_options["hidden_mean"].norm().item(), 6)
    matrices = [w_in]
    out = model.get_output_embeddings()
    if out is not None and not tied:
        if out.weight.shape[0] <= max(new_ids):
            raise VocabxError(
                f"the output matrix has {out.weight.shape[0]} rows but new id {max(new_ids)} was given; "
                "call resize_for_new_tokens(model, len(tokenizer)) first"
            )
        matrices.append(out.weight)
    index = torch.tensor(new_ids, dtype=torch.long, device=w_in.device)
    with torch.no_grad():
        for k, weight in enumerate(matrices):
            generator = torch.Generator().manual_seed(seed)
            produces_logits = tied or k == 1
            extra = {**options, **(output_options if produces_logits else {})}
            weight[index.to(weight.device)] = fn(weight[:n_base], pieces, generator=generator, **extra)
        summary["new_norm"] = round(w_in[index].float().norm(dim=1).mean().item(), 6)
        summary["base_norm"] = round(w_in[:n_base].float().norm(dim=1).mean().item(), 6)
    assert is_tied(model) == tied, "writing rows must not change whether the model is tied"
    return summary
