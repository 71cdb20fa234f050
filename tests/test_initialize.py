"""Initialization of new embedding rows: every strategy's numbers, tying, padding, resizing and bad input."""

from __future__ import annotations

import math

import pytest
import torch

import tinymodels
import vocabx.initialize as vinit
from vocabx.errors import VocabxError
from vocabx.initialize import (
    HEWITT_SCALE,
    INITIALIZERS,
    INTERPOLATE_ALPHA,
    MEAN_SHIFT_FLOOR,
    MEAN_SHIFT_TOKENS,
    hidden_mean,
    initialize_new_rows,
    is_tied,
    resize_for_new_tokens,
    resolve_init,
    shift_nats,
)

SHORT_NAMES = ["mean_shift", "mean", "mean_norm", "interpolate", "hewitt", "random"]
PIECES = [[3, 5], [7], [1, 2, 4, 9]]


def _weight(rows: int = 12, dim: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed))


def _run(name: str, weight: torch.Tensor, pieces=PIECES, seed: int = 0) -> torch.Tensor:
    return INITIALIZERS[resolve_init(name)](weight, pieces, generator=torch.Generator().manual_seed(seed))


def test_short_names_resolve_to_current_versions_and_versioned_names_to_themselves():
    current = {f"{n}.v2" if n == "mean_shift" else f"{n}.v1" for n in SHORT_NAMES}
    assert {resolve_init(n) for n in SHORT_NAMES} == current == set(INITIALIZERS) - {"mean_shift.v1"}
    assert resolve_init("hewitt.v1") == "hewitt.v1" and resolve_init("mean_shift.v1") == "mean_shift.v1"


def test_unknown_strategy_names_the_value_and_the_accepted_names():
    with pytest.raises(VocabxError, match=r"'avg'.*mean, mean_norm.*hewitt\.v1"):
        resolve_init("avg")
    with pytest.raises(VocabxError, match="'avg'"):
        initialize_new_rows(tinymodels.make_causal_lm(16), [12], [[1]], "avg")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", SHORT_NAMES)
def test_every_strategy_gives_one_row_per_new_token_in_the_weight_dtype(name, dtype):
    rows = _run(name, _weight().to(dtype))
    assert rows.shape == (len(PIECES), 6) and rows.dtype == dtype
    assert torch.isfinite(rows.float()).all()


@pytest.mark.parametrize("name", SHORT_NAMES)
def test_every_strategy_is_deterministic_for_a_seed(name):
    weight = _weight()
    assert torch.equal(_run(name, weight, seed=1), _run(name, weight, seed=1))
    if name in ("hewitt", "random"):
        assert not torch.equal(_run(name, weight, seed=1), _run(name, weight, seed=2))


def test_mean_is_the_mean_of_the_pieces_rows():
    weight = _weight()
    expected = torch.stack([weight[p].mean(dim=0) for p in PIECES])
    torch.testing.assert_close(_run("mean", weight), expected)


def test_mean_is_computed_in_float32_for_bfloat16_weights():
    weight = _weight().to(torch.bfloat16)
    expected = torch.stack([weight[p].float().mean(dim=0) for p in PIECES]).to(torch.bfloat16)
    assert torch.equal(_run("mean", weight), expected)


def test_the_shift_grows_with_the_log_of_the_number_of_new_tokens(monkeypatch):
    assert shift_nats(1) == shift_nats(MEAN_SHIFT_TOKENS) == 0.0
    assert shift_nats(8192) == pytest.approx(math.log(8192 / MEAN_SHIFT_TOKENS)) and 3.0 < shift_nats(8192) < 3.1
    assert shift_nats(2 * 1024) - shift_nats(1024) == pytest.approx(math.log(2))
    monkeypatch.setattr(vinit, "MEAN_SHIFT_NATS", 1.5)
    assert shift_nats(8192) == shift_nats(3) == 1.5


def test_mean_shift_v2_shifts_at_least_the_floor_and_v1_keeps_its_rule():
    assert resolve_init("mean_shift") == "mean_shift.v2" and resolve_init("mean_shift.v1") == "mean_shift.v1"
    assert shift_nats(1, MEAN_SHIFT_FLOOR) == shift_nats(1024, MEAN_SHIFT_FLOOR) == MEAN_SHIFT_FLOOR == 2.0
    assert shift_nats(8192, MEAN_SHIFT_FLOOR) == shift_nats(8192)  # (above the floor the rules agree)
    weight, h = _weight(), torch.randn(6, generator=torch.Generator().manual_seed(3))
    plain = _run("mean", weight)
    v1 = INITIALIZERS["mean_shift.v1"](weight, PIECES, generator=torch.Generator(), hidden_mean=h)
    v2 = INITIALIZERS["mean_shift.v2"](weight, PIECES, generator=torch.Generator(), hidden_mean=h)
    torch.testing.assert_close(v1, plain)  # (3 new tokens: v1 shifts by nothing)
    torch.testing.assert_close(v2 @ h, plain @ h - MEAN_SHIFT_FLOOR)


def test_mean_shift_lowers_the_logit_in_the_mean_context_by_the_set_nats_and_is_mean_without_it(monkeypatch):
    monkeypatch.setattr(vinit, "MEAN_SHIFT_NATS", 3.0)
    weight, h = _weight(), torch.randn(6, generator=torch.Generator().manual_seed(3))
    plain = _run("mean", weight)
    shifted = INITIALIZERS["mean_shift.v1"](weight, PIECES, generator=torch.Generator(), hidden_mean=h)
    torch.testing.assert_close(shifted @ h, plain @ h - 3.0)
    # moved along h only: the component orthogonal to h is the mean's
    ortho = lambda rows: rows - (rows @ h)[:, None] * h / (h @ h)  # noqa: E731
    torch.testing.assert_close(ortho(shifted), ortho(plain))
    torch.testing.assert_close(_run("mean_shift", weight), plain)


def test_hidden_mean_is_the_mean_input_of_the_output_layer_over_the_pieces():
    model = tinymodels.make_causal_lm(40)
    model.config.bos_token_id = 0
    ids = [i for p in PIECES for i in p]
    with torch.no_grad():
        h = model.model(input_ids=torch.tensor([[0] + ids])).last_hidden_state[0, 1:]
    torch.testing.assert_close(hidden_mean(model, PIECES), h.mean(0))
    model.train()
    with torch.no_grad():  # several windows, each behind its own BOS context token
        parts = [model.model(input_ids=torch.tensor([[0] + ids[i : i + 3]])).last_hidden_state[0, 1:] for i in range(0, len(ids), 3)]
    torch.testing.assert_close(hidden_mean(model, PIECES, window=3), torch.cat(parts).mean(0))
    assert model.training  # the mode is restored


def test_mean_shift_on_a_model_without_an_output_layer_names_the_model_and_the_fix(monkeypatch):
    model = _grown(tied=False)
    monkeypatch.setattr(model, "get_output_embeddings", lambda: None)
    with pytest.raises(VocabxError, match=r"LlamaForCausalLM has no output layer; use --init mean"):
        initialize_new_rows(model, [40, 41, 42], PIECES, "mean_shift")


@pytest.mark.parametrize("tied", [True, False])
def test_mean_shift_moves_only_the_rows_that_produce_logits(tied, monkeypatch):
    monkeypatch.setattr(vinit, "MEAN_SHIFT_NATS", 3.0)
    model = _grown(tied=tied)
    model.config.bos_token_id = 0
    before_in = model.get_input_embeddings().weight.detach().clone()
    before_out = model.get_output_embeddings().weight.detach().clone()
    h = hidden_mean(model, PIECES)
    summary = initialize_new_rows(model, [40, 41, 42], PIECES, "mean_shift")
    assert summary["strategy"] == "mean_shift.v2" and is_tied(model) == tied
    out_rows = model.get_output_embeddings().weight[40:].detach()
    torch.testing.assert_close(out_rows @ h, _run("mean", before_out[:40]) @ h - 3.0, atol=1e-4, rtol=1e-4)
    if not tied:
        torch.testing.assert_close(model.get_input_embeddings().weight[40:].detach(), _run("mean", before_in[:40]))


def test_mean_norm_has_the_direction_of_the_mean_and_the_pieces_average_norm():
    weight = _weight()
    rows = _run("mean_norm", weight)
    for row, mean, p in zip(rows, _run("mean", weight), PIECES):
        torch.testing.assert_close(row.norm(), weight[p].norm(dim=1).mean())
        torch.testing.assert_close(row / row.norm(), mean / mean.norm())
    worked = _run("mean_norm", torch.tensor([[3.0, 0.0], [0.0, 4.0]]), [[0, 1]])
    torch.testing.assert_close(worked, torch.tensor([[2.1, 2.8]]))


def test_mean_norm_of_pieces_that_cancel_is_zero():
    weight = torch.tensor([[1.0, 2.0], [-1.0, -2.0]])
    assert torch.equal(_run("mean_norm", weight, [[0, 1]]), torch.zeros(1, 2))


def test_interpolate_mixes_the_pieces_mean_with_the_global_mean():
    weight = _weight()
    expected = INTERPOLATE_ALPHA * _run("mean", weight) + (1 - INTERPOLATE_ALPHA) * weight.mean(dim=0)
    torch.testing.assert_close(_run("interpolate", weight), expected)


def test_hewitt_is_the_global_mean_plus_noise_with_the_scaled_covariance():
    weight = _weight(rows=50, dim=4) * torch.tensor([1.0, 2.0, 0.5, 3.0])
    rows = _run("hewitt", weight, [[0]] * 20_000).double()
    mu = weight.double().mean(dim=0)
    centered = weight.double() - mu
    sigma = centered.T @ centered / weight.shape[0]
    noise_scale = HEWITT_SCALE**0.5 * sigma.diagonal().sqrt()
    torch.testing.assert_close(rows.mean(dim=0), mu, atol=float(noise_scale.max()) * 0.05, rtol=0)
    sample_cov = torch.cov(rows.T, correction=0)
    torch.testing.assert_close(sample_cov, HEWITT_SCALE * sigma, atol=HEWITT_SCALE * 0.1, rtol=0.05)


def test_hewitt_works_when_the_covariance_is_singular():
    weight = _weight(rows=3, dim=8)  # 3 rows span at most 2 centred directions of 8
    rows = _run("hewitt", weight).float()
    assert torch.isfinite(rows).all()
    assert (rows - weight.mean(dim=0)).abs().max() < 0.1


def test_random_defaults_to_the_std_of_the_matrix():
    weight = 3.0 * _weight(rows=400, dim=50)
    rows = _run("random", weight, [[0]] * 400)
    assert rows.std().item() == pytest.approx(weight.std().item(), rel=0.05)
    assert abs(rows.mean().item()) < 0.05


# ---------------------------------------------------------------------------------------------------
# Writing into models


def _grown(vocab: int = 40, new: int = 3, *, tied: bool = True):
    model = tinymodels.make_causal_lm(vocab, tied=tied)
    resize_for_new_tokens(model, vocab + new)
    return model


def test_tied_model_is_written_once_and_stays_tied():
    model = _grown(tied=True)
    before = model.get_input_embeddings().weight.detach().clone()
    summary = initialize_new_rows(model, [40, 41, 42], PIECES, "mean")
    w_in = model.get_input_embeddings().weight
    assert w_in is model.get_output_embeddings().weight and is_tied(model)
    torch.testing.assert_close(w_in[40:43].detach(), torch.stack([before[p].mean(dim=0) for p in PIECES]))
    assert torch.equal(w_in[:40].detach(), before[:40])  # base rows untouched
    assert summary["strategy"] == "mean.v1" and summary["n"] == 3 and summary["tied"] is True
    assert summary["new_norm"] == pytest.approx(w_in[40:43].norm(dim=1).mean().item(), rel=1e-5)
    assert summary["base_norm"] == pytest.approx(before[:40].norm(dim=1).mean().item(), rel=1e-5)


def test_untied_model_gets_input_and_output_rows_each_from_its_own_matrix():
    model = _grown(tied=False)
    w_in, w_out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert w_in is not w_out and not is_tied(model)
    before_in, before_out = w_in.detach().clone(), w_out.detach().clone()
    assert initialize_new_rows(model, [40, 41, 42], PIECES, "mean_norm")["tied"] is False
    expected_in = _run("mean_norm", before_in[:40])
    expected_out = _run("mean_norm", before_out[:40])
    assert not torch.allclose(expected_in, expected_out)
    torch.testing.assert_close(model.get_input_embeddings().weight[40:].detach(), expected_in)
    torch.testing.assert_close(model.get_output_embeddings().weight[40:].detach(), expected_out)


@pytest.mark.parametrize("name", ["interpolate", "hewitt"])
def test_global_statistics_use_only_the_base_rows(name):
    model = _grown(tied=True)
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        weight[40:] = 1e6  # rows left by the resize must not leak into the global mean
    expected = _run(name, weight.detach()[:40].clone())
    initialize_new_rows(model, [40, 41, 42], PIECES, name)
    torch.testing.assert_close(weight[40:].detach(), expected)


def test_random_uses_the_models_initializer_range():
    model = _grown(vocab=40, new=2000)
    initialize_new_rows(model, list(range(40, 2040)), [[1]] * 2000, "random", seed=3)
    rows = model.get_input_embeddings().weight[40:].detach()
    assert rows.std().item() == pytest.approx(model.config.initializer_range, rel=0.05)


def test_same_seed_gives_the_same_model():
    a, b = _grown(), _grown()
    initialize_new_rows(a, [40, 41, 42], PIECES, "hewitt", seed=7)
    initialize_new_rows(b, [40, 41, 42], PIECES, "hewitt", seed=7)
    assert torch.equal(a.get_input_embeddings().weight, b.get_input_embeddings().weight)


def test_a_padded_matrix_is_not_resized_and_its_padding_rows_take_the_new_tokens(tiny_tokenizers):
    tokenizer = tiny_tokenizers["byte_bpe"]
    n = len(tokenizer)
    model = tinymodels.make_causal_lm(n + 24)  # padded beyond the tokenizer, as Qwen's matrices are
    weight = model.get_input_embeddings().weight
    pieces = tokenizer(" hepatosplenomegaly", add_special_tokens=False)["input_ids"]
    tokenizer.add_tokens(["<hepatosplenomegaly>"])
    assert resize_for_new_tokens(model, len(tokenizer), pad_to_multiple_of=64) == n + 24
    assert model.get_input_embeddings().weight is weight and weight.shape[0] == n + 24
    initialize_new_rows(model, [n], [pieces], "mean")
    torch.testing.assert_close(weight[n].detach(), weight[pieces].detach().mean(dim=0))
    ids = tokenizer("a <hepatosplenomegaly>", return_tensors="pt")["input_ids"]
    assert n in ids[0].tolist() and torch.isfinite(model(ids).logits).all()


@pytest.mark.parametrize("tied", [True, False])
def test_resize_grows_both_matrices_and_keeps_tying(tied):
    model = tinymodels.make_causal_lm(40, tied=tied)
    assert resize_for_new_tokens(model, 45) == 45
    assert model.get_input_embeddings().weight.shape[0] == model.get_output_embeddings().weight.shape[0] == 45
    assert is_tied(model) is tied
    assert model.config.vocab_size == 45


def test_pad_to_multiple_of_rounds_the_new_size_up():
    model = tinymodels.make_causal_lm(40)
    assert resize_for_new_tokens(model, 45, pad_to_multiple_of=16) == 48
    assert model.get_output_embeddings().weight.shape[0] == 48 and is_tied(model)


def test_resize_never_shrinks():
    model = tinymodels.make_causal_lm(40)
    weight = model.get_input_embeddings().weight
    assert resize_for_new_tokens(model, 10) == 40
    assert model.get_input_embeddings().weight is weight


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_tokens_needed": 0}, "n_tokens_needed must be a positive int, got 0"),
        ({"n_tokens_needed": 50, "pad_to_multiple_of": -8}, "--pad-to-multiple-of must be a positive int, got -8"),
    ],
)
def test_bad_resize_arguments_are_errors(kwargs, message):
    with pytest.raises(VocabxError, match=message):
        resize_for_new_tokens(tinymodels.make_causal_lm(40), **kwargs)


@pytest.mark.parametrize(
    "new_ids, pieces, message",
    [
        ([40, 41], [[1]], "2 new ids but 1 piece lists"),
        ([40, 43], [[1], [2]], r"new ids \[43\] are outside the embedding matrix of 43 rows.*resize_for_new_tokens"),
        ([-1], [[1]], r"new ids \[-1\] are outside"),
        ([40, 40], [[1], [2]], r"new ids \[40\] appear more than once"),
        ([40], [[]], r"new id 40 has pieces \[\]; pass a non-empty list"),
        ([40, 41], [[1], [40]], r"new id 41 has pieces \[40\] outside the base vocabulary 0\.\.39"),
        ([40], [[1.5]], r"new id 40 has pieces \[1\.5\] outside"),
    ],
)
def test_bad_ids_and_pieces_are_errors_naming_the_value(new_ids, pieces, message):
    model = _grown()
    before = model.get_input_embeddings().weight.detach().clone()
    with pytest.raises(VocabxError, match=message):
        initialize_new_rows(model, new_ids, pieces)
    assert torch.equal(model.get_input_embeddings().weight, before)  # nothing written on a refusal


def test_no_new_ids_is_a_no_op():
    model = _grown()
    before = model.get_input_embeddings().weight.detach().clone()
    assert initialize_new_rows(model, [], [], "hewitt") == {"strategy": "hewitt.v1", "n": 0, "tied": True}
    assert torch.equal(model.get_input_embeddings().weight, before)


def test_hidden_mean_fits_its_chunks_into_a_model_with_learned_positions():
    """GPT-2 has learned positions (n_positions); a chunk of ``window`` pieces plus BOS must not exceed them."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=300, n_positions=64, n_embd=32, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    resize_for_new_tokens(model, 310)
    pieces = [[(i * j) % 200 + 1 for j in range(10)] for i in range(10)]  # 100 tokens: more than 64 positions
    summary = initialize_new_rows(model, list(range(300, 310)), pieces, "mean_shift")
    assert math.isfinite(summary["hidden_mean_norm"])
    assert torch.isfinite(model.get_input_embeddings().weight).all()
