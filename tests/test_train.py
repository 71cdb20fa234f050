"""Training: what each mode trains, the row-sparse step, exact resume, the small adapter, loading, merging,
the command line and its one-line errors, and two processes under accelerate launch."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import tinymodels
from vocabx.cli import main
from vocabx.errors import VocabxError
from vocabx.train import TrainConfig, fused_linear_cross_entropy, load_adapted, lr_factor, parse_ids, train
from vocabx.train.loop import _BlockOrder

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(batch_size=2, block_size=32, eval_every=0, save_every=0, max_eval_docs=4, progress=False)
ADDED = [("Ġhepatosplenomegaly", " hepatosplenomegaly", "word"), ("Ġlymphadenopathy", " lymphadenopathy", "word"), ("ĠofĠthe", " of the", "phrase")]


def _texts(n: int = 4) -> list[str]:
    return [f"{text} (record {i})" for i, text in enumerate(tinymodels.TRAINING_TEXT * n)]


def _make_ext(folder: Path, *, tied: bool) -> tuple[Path, Path]:
    """A tiny base model folder and its extension by three tokens (padded to 8 rows: padding rows too)."""
    from vocabx.extend import NewToken, extend, save_extension

    tok = tinymodels.make_tokenizer("byte_bpe")
    model = tinymodels.make_causal_lm(len(tok), tied=tied)
    base = folder / "base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    ext = extend(model, [NewToken(*a) for a in ADDED], tokenizer=tok, pad_to_multiple_of=8)
    assert len(ext.new_ids) == 3
    save_extension(ext, folder / "ext")
    return base, folder / "ext"


@pytest.fixture(scope="session")
def tied_models(tmp_path_factory):
    return _make_ext(tmp_path_factory.mktemp("tied"), tied=True)


@pytest.fixture(scope="session")
def untied_models(tmp_path_factory):
    return _make_ext(tmp_path_factory.mktemp("untied"), tied=False)


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "notes.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in _texts()), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _packed_cache(tmp_path, monkeypatch):
    monkeypatch.setattr("vocabx.data.default_cache_dir", lambda: tmp_path / "packed")
    monkeypatch.setenv("VOCABX_HOME", str(tmp_path / "home"))


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models gain nothing from threads, and on a busy machine every op waits for the slowest one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _losses(folder: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, (folder / "log.jsonl").read_text().splitlines()) if r["type"] == "train"]


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


# ---------------------------------------------------------------------------------------------------
# The row-sparse step


def test_fused_cross_entropy_has_the_plain_loss_and_gradients():
    torch.manual_seed(0)
    h = torch.randn(50, 8, requires_grad=True)
    w = torch.randn(30, 8, requires_grad=True)
    d = torch.randn(3, 8, requires_grad=True)
    ids = torch.tensor([27, 28, 29])
    y = torch.randint(0, 30, (50,))
    y[[3, 17]] = -100
    plain = torch.nn.functional.cross_entropy(h @ w.index_copy(0, ids, d).T, y, reduction="sum")
    expected = torch.autograd.grad(plain * 0.5, (h, w, d))
    fused = fused_linear_cross_entropy(h, w, y, delta=d, ids=ids, chunk_rows=7)
    got = torch.autograd.grad(fused * 0.5, (h, w, d))
    assert fused.item() == pytest.approx(plain.item(), rel=1e-6)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert got[1][ids].abs().sum() == 0  # rows replaced by delta get no gradient in W


@pytest.mark.parametrize("which", ["tied", "untied"])
def test_the_training_step_matches_the_peft_forward_in_loss_and_gradients(which, tied_models, untied_models):
    from vocabx.models import load_model, load_tokenizer
    from vocabx.train.fused import _fused_parts, _make_step
    from vocabx.train.model import _rows_of, _wrap_peft

    ext = (tied_models if which == "tied" else untied_models)[1]
    config = TrainConfig(lora_dropout=0.0)
    model = load_model(ext)
    peft_model = _wrap_peft(model, _rows_of(str(ext), model, load_tokenizer(ext), config), config)
    with torch.no_grad():  # LoRA B starts at zero; give it a value so the LoRA path counts
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    step = _make_step(peft_model)
    ids = torch.tensor([[5, 600, 7, 601, 602, 9, 600, 11], [600, 3, 4, 601, 8, 8, 2, 602]])

    def run():
        peft_model.zero_grad()
        loss = step(ids)
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in peft_model.named_parameters() if p.requires_grad}

    plain_loss, plain_grads = run()
    step.fused.append(_fused_parts(peft_model, "cpu"))
    fused_loss, fused_grads = run()
    assert fused_loss == pytest.approx(plain_loss, rel=1e-6)
    assert plain_grads.keys() == fused_grads.keys() and any("trainable_tokens_delta" in n for n in fused_grads)
    for name in plain_grads:
        torch.testing.assert_close(fused_grads[name], plain_grads[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("target", ["lm_head", "embed_tokens"])
def test_lora_on_the_embedding_or_output_layer_trains_through_the_plain_forward(target, untied_models, tmp_path):
    """The fused step reads the embedding matrices themselves: with LoRA on either of them it would
    leave that LoRA out of the loss and never train it."""
    result = train(untied_models[1], _texts(), tmp_path / "run", mode="lora", lora_targets=f"q_proj,{target}", lora_dropout=0.0, max_steps=2, **FAST)
    assert json.loads((Path(result.output_dir) / "vocabx_train.json").read_text())["fused_loss"] is False
    lora = {n: p for n, p in result.model.named_parameters() if target in n and "lora_" in n}
    assert lora
    side = "lora_B" if target == "lm_head" else "lora_embedding_A"  # the zero-initialised half
    assert any(side in n and p.abs().sum() > 0 for n, p in lora.items()), lora.keys()


def test_lr_schedule_warms_up_then_follows_a_cosine_to_the_floor():
    assert [round(lr_factor(s, 10, 2, 0.1), 3) for s in (0, 1, 2, 6, 9)] == [0.5, 1.0, 1.0, 0.55, 0.134]
    assert lr_factor(10, 10, 0, 0.1) == pytest.approx(0.1)


def test_block_order_is_a_fresh_seeded_permutation_per_epoch():
    order = _BlockOrder(5, seed=3)
    first, second = order.take(0, 5), order.take(5, 5)
    assert sorted(first) == sorted(second) == [0, 1, 2, 3, 4] and first != second
    assert _BlockOrder(5, seed=3).take(3, 4) == (first + second)[3:7]


def test_new_token_ids_parse_ranges_and_reject_garbage():
    assert parse_ids("10-12, 20") == [10, 11, 12, 20]
    with pytest.raises(VocabxError, match="--new-token-ids takes ids and ranges"):
        parse_ids("12-10")


# ---------------------------------------------------------------------------------------------------
# Runs


def test_lora_tokens_trains_lora_and_only_the_new_rows_into_a_small_adapter(tied_models, tmp_path):
    from safetensors.torch import load_file

    from vocabx.models import load_model

    base, ext = tied_models
    result = train(ext, _texts(), tmp_path / "run", max_steps=3, **FAST)
    assert result.steps == 3 and result.tokens == 3 * 2 * 32
    assert result.eval_bpb is not None and 0 < result.eval_bpb < 10
    out = Path(result.output_dir)
    keys = load_file(out / "adapter_model.safetensors").keys()
    assert all("lora_" in k or "trainable_tokens_delta" in k for k in keys)
    assert sum("trainable_tokens_delta" in k for k in keys) == 1  # tied: one set of rows serves both sides
    assert result.adapter_bytes == (out / "adapter_model.safetensors").stat().st_size < 200_000
    record = json.loads((out / "vocabx_train.json").read_text())
    assert record["schema"] == "vocabx.train/1" and record["status"] == "done" and record["fused_loss"]
    assert record["compiled"] is False and record["config"]["compile"] == "auto"  # auto stays eager on CPU
    assert record["extension"]["trainable_ids"] == [600, 601, 602] and record["extension"]["stored_ids"] == list(range(603, 608))
    for name in ("tokenizer.json", "train_config.yaml", "train.md", "log.jsonl", "extension_rows.safetensors"):
        assert (out / name).is_file(), name
    trained = result.model.get_base_model()
    layer = trained.model.embed_tokens.token_adapter
    original = load_model(ext).get_input_embeddings().weight
    assert torch.equal(layer.base_layer.weight, original)  # the matrix itself never changes
    assert not torch.allclose(layer.trainable_tokens_delta["default"], original[600:603])


@pytest.mark.parametrize(
    ("mode", "trained"),
    [("tokens", {"trainable_tokens_delta"}), ("lora", {"lora_A", "lora_B"}), ("full", {"embed_tokens", "q_proj"})],
)
def test_each_mode_trains_what_it_names(mode, trained, tied_models, tmp_path):
    result = train(tied_models[1], _texts(), tmp_path / mode, mode=mode, max_steps=1, **FAST)
    names = [n for n, p in result.model.named_parameters() if p.requires_grad]
    assert all(any(t in n for t in trained) for t in trained for n in names if mode != "full")
    assert {t for t in trained if any(t in n for n in names)} == trained
    if mode == "full":
        assert (Path(result.output_dir) / "model.safetensors").is_file()
    else:
        assert not any("trainable_tokens_delta" in n for n in names) or mode == "tokens"


@pytest.mark.parametrize("which", ["tied", "untied"])
def test_sparse_row_updates_move_only_the_rows_of_tokens_the_batches_hold(which, tied_models, untied_models, tmp_path):
    """Text with ' of the' (id 602) but neither long word (600, 601): by default only row 602 moves on
    either side; with --rows-update dense every new row of the logit side moves (each softmax pushes
    the absent ones); with active, the absent rows move where their probability reached --row-mass
    (all of them at a tiny threshold, none at a huge one)."""
    from vocabx.models import load_model
    from vocabx.train.model import _token_layer

    ext = (tied_models if which == "tied" else untied_models)[1]
    texts = [f"One of the notes, part {i} of the record, said most of the rest." for i in range(40)]
    original = load_model(ext)
    sides = [original.get_input_embeddings().weight] + ([] if which == "tied" else [original.get_output_embeddings().weight])
    moved = {}
    runs = {"sparse": {}, "dense": {}, "active-low": {"rows_update": "active", "row_mass": 1e-12}, "active-high": {"rows_update": "active", "row_mass": 1e9}}
    for update, settings in runs.items():
        settings = {"rows_update": update, **settings}
        result = train(ext, texts, tmp_path / update, mode="tokens", max_steps=3, warmup_steps=0, adapter_dtype="fp32", **settings, **FAST)
        lm = result.model.get_base_model()
        adapters = [_token_layer(lm.get_input_embeddings())] + ([] if which == "tied" else [_token_layer(lm.get_output_embeddings())])
        moved[update] = [
            [not torch.equal(a.trainable_tokens_delta["default"][k], w[600 + k]) for k in range(3)] for a, w in zip(adapters, sides)
        ]
    assert all(m == [False, False, True] for m in moved["sparse"]), moved
    assert moved["active-high"] == moved["sparse"], moved
    for update in ("dense", "active-low"):
        assert moved[update][-1] == [True, True, True], moved  # the side that makes logits: every row moves
        if which == "untied":
            assert moved[update][0] == [False, False, True], moved  # an input row only gets gradient where it is read


def test_active_row_updates_without_the_fused_step_say_so_and_move_only_the_batch_rows(tied_models, tmp_path):
    from vocabx.errors import VocabxWarning

    texts = [f"One of the notes, part {i} of the record, said most of the rest." for i in range(40)]
    settings = dict(FAST, mode="tokens", max_steps=2, warmup_steps=0, adapter_dtype="fp32", fused_loss=False)
    with pytest.warns(VocabxWarning, match="fused training step"):
        active = train(tied_models[1], texts, tmp_path / "active", rows_update="active", row_mass=1e-12, **settings)
    sparse = train(tied_models[1], texts, tmp_path / "sparse", rows_update="sparse", **settings)
    assert _losses(tmp_path / "active") == pytest.approx(_losses(tmp_path / "sparse"), rel=1e-6)
    assert active.tokens == sparse.tokens


def test_active_rows_are_those_reaching_the_row_mass_per_thousand_positions():
    from vocabx.train.loop import _active_rows

    mass, ids = torch.tensor([0.01, 0.04, 0.05, 2.0]), torch.tensor([600, 601, 602, 603])
    # 2,048 positions at 0.02 per 1,000: a row needs 0.04096
    assert ids[_active_rows(mass, 0.02, 2048)].tolist() == [602, 603]
    assert ids[_active_rows(mass, 0.02, 1000)].tolist() == [601, 602, 603]  # 0.02
    assert ids[_active_rows(mass, 0.02, 250)].tolist() == [600, 601, 602, 603]  # 0.005


def test_active_rows_keep_their_gradient_beside_the_batch_s_rows():
    from types import SimpleNamespace

    from vocabx.train.loop import _keep_rows_in_batch

    ids = torch.tensor([600, 601, 602, 603])
    delta = torch.zeros(4, 2, requires_grad=True)
    delta.grad = torch.ones(4, 2)
    batch = torch.tensor([[5, 600, 7]])
    # 601 is in no batch but active; 602 is active-ids but its mask is off; 603 is neither
    _keep_rows_in_batch([(delta, ids, 604)], [batch], SimpleNamespace(num_processes=1), (ids, torch.tensor([False, True, False, False])))
    assert delta.grad[:, 0].tolist() == [1.0, 1.0, 0.0, 0.0]


def test_fused_loss_sums_each_new_rows_probability_when_asked():
    from vocabx.train import fused_linear_cross_entropy

    g = torch.Generator().manual_seed(0)
    hidden, weight, delta = torch.randn(10, 8, generator=g), torch.randn(30, 8, generator=g), torch.randn(3, 8, generator=g)
    ids, labels = torch.tensor([27, 28, 29]), torch.randint(0, 30, (10,), generator=g)
    labels[3], labels[0], labels[5], labels[7] = -100, 28, 29, 29  # targets among the new rows too
    mass = torch.zeros(3)
    fused_linear_cross_entropy(hidden, weight, labels, delta=delta, ids=ids, chunk_rows=4, mass=mass)
    full = weight.clone()
    full[ids] = delta
    probs = torch.softmax(hidden @ full.T, dim=1)[labels != -100]
    assert torch.allclose(mass, probs[:, ids].sum(0), atol=1e-6)


def test_new_rows_have_their_own_learning_rate_and_can_warm_up_alone(tied_models, tmp_path):
    result = train(tied_models[1], _texts(), tmp_path / "run", max_steps=4, embedding_warmup_steps=2, warmup_steps=0, lr=1e-3, embedding_lr=5e-3, **FAST)
    log = [r for r in result.history if r["type"] == "train"]
    assert [r["lr"] for r in log[:2]] == [0.0, 0.0] and log[2]["lr"] == pytest.approx(1e-3)
    assert log[0]["lr_rows"] == pytest.approx(5e-3)
    lora_b = [p for n, p in result.model.named_parameters() if "lora_B" in n]
    assert any(p.abs().sum() > 0 for p in lora_b)


def test_accumulating_two_micro_batches_equals_one_batch_of_two(tied_models, tmp_path):
    settings = dict(FAST, max_steps=3, max_grad_norm=0.0, adapter_dtype="fp32")
    whole = train(tied_models[1], _texts(), tmp_path / "whole", **settings)
    accumulated = train(tied_models[1], _texts(), tmp_path / "accum", **{**settings, "batch_size": 1, "grad_accum": 2})
    assert _losses(tmp_path / "accum") == pytest.approx(_losses(tmp_path / "whole"), rel=1e-5)
    assert accumulated.tokens == whole.tokens


def test_gradient_checkpointing_changes_memory_not_the_losses(tied_models, tmp_path):
    train(tied_models[1], _texts(), tmp_path / "plain", **dict(FAST, max_steps=2))
    train(tied_models[1], _texts(), tmp_path / "checkpointed", **dict(FAST, max_steps=2, gradient_checkpointing=True))
    assert _losses(tmp_path / "checkpointed") == pytest.approx(_losses(tmp_path / "plain"), rel=1e-5)


def test_fast_dropout_drops_p_unbiased_and_passes_gradients_through_its_mask():
    from vocabx.train.fused import _fast_dropout

    dropout = _fast_dropout(0.05)
    x = torch.ones(1000, 1000, requires_grad=True)
    torch.manual_seed(0)
    y = dropout(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.05) < 0.002
    assert y.mean().item() == pytest.approx(1.0, abs=0.005)  # kept elements scaled up: unbiased
    assert y.unique().tolist() == [0.0, pytest.approx(65536 / (65536 - 3277))]  # 3277 / 65536: p to 16 bits
    y.backward(torch.full_like(y, 2.0))
    torch.testing.assert_close(x.grad, 2.0 * y.detach(), rtol=0, atol=0)  # the same mask, the same scale
    torch.manual_seed(0)
    assert torch.equal(dropout(x), y)  # masks come from torch's generator: seeded, replayable
    assert not torch.equal(dropout(x), y)
    dropout.eval()
    assert dropout(x) is x
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        _fast_dropout(1.0)


def test_cpu_training_swaps_the_lora_dropouts_for_the_fast_one(tied_models, tmp_path):
    from vocabx.train.fused import _fast_dropout

    result = train(tied_models[1], _texts(), tmp_path / "run", **dict(FAST, max_steps=1, lora_dropout=0.1))
    dropouts = [d for m in result.model.modules() if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict) for d in m.lora_dropout.values()]
    assert dropouts and all(type(d) is type(_fast_dropout(0.1)) and d.p == 0.1 for d in dropouts)


def _crash_in_step_four(monkeypatch, run) -> None:
    """Call ``run`` (a training run of at least four steps) with the fourth forward pass interrupted."""
    vt = importlib.import_module("vocabx.train.loop")
    real = vt._forward_loss
    calls = {"n": 0}

    def crash(step, ids):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(step, ids)

    monkeypatch.setattr(vt, "_forward_loss", crash)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.setattr(vt, "_forward_loss", real)


def test_six_steps_equal_three_then_a_crash_then_resume(tied_models, tmp_path, monkeypatch):
    settings = dict(FAST, max_steps=6, save_every=3, eval_every=2, lora_dropout=0.1)  # dropout: the RNG must resume too
    whole = train(tied_models[1], _texts(), tmp_path / "whole", **settings)
    _crash_in_step_four(monkeypatch, lambda: train(tied_models[1], _texts(), tmp_path / "split", **settings))
    assert _losses(tmp_path / "split") == _losses(tmp_path / "whole")[:3]
    resumed = train(tied_models[1], _texts(), tmp_path / "split", resume=True, **settings)
    assert _losses(tmp_path / "split") == pytest.approx(_losses(tmp_path / "whole"), rel=1e-6, abs=0)
    assert resumed.eval_bpb == pytest.approx(whole.eval_bpb, rel=1e-6)
    ids = torch.tensor([[5, 600, 7, 601, 602, 9]])
    torch.testing.assert_close(_logits(resumed.model, ids), _logits(whole.model, ids), rtol=0, atol=1e-6)


def test_a_crash_while_saving_keeps_the_last_checkpoint(tied_models, tmp_path, monkeypatch):
    from accelerate import Accelerator

    real = Accelerator.save_state
    calls = {"n": 0}

    def failing_save(self, output_dir=None, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / "model.safetensors").write_bytes(b"half")
            raise OSError("disk full")
        return real(self, output_dir, **kwargs)

    monkeypatch.setattr(Accelerator, "save_state", failing_save)
    settings = dict(FAST, max_steps=4, save_every=2, keep_checkpoints=1)
    with pytest.raises(OSError, match="disk full"):
        train(tied_models[1], _texts(), tmp_path / "run", **settings)
    monkeypatch.setattr(Accelerator, "save_state", real)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert [p.name for p in checkpoints.iterdir() if not p.name.startswith(".")] == ["step-00000002"]
    result = train(tied_models[1], _texts(), tmp_path / "run", resume=True, **settings)
    assert result.steps == 4 and sorted(p.name for p in checkpoints.iterdir()) == ["step-00000004"]


def test_a_kill_while_deleting_an_old_checkpoint_leaves_no_stray_folder(tied_models, tmp_path, monkeypatch):
    import shutil

    real = shutil.rmtree

    def killed_halfway(path, *args, **kwargs):
        # The old checkpoint loses its state file and weights, then the process dies.
        if "step-00000002" in Path(path).name and not Path(path).name.endswith(".tmp"):
            monkeypatch.setattr(shutil, "rmtree", real)
            for name in ("vocabx_state.json", "model.safetensors"):
                (Path(path) / name).unlink()
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", killed_halfway)
    settings = dict(FAST, max_steps=6, save_every=2, keep_checkpoints=1)
    with pytest.raises(KeyboardInterrupt):
        train(tied_models[1], _texts(), tmp_path / "run", **settings)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert len(list(checkpoints.iterdir())) == 2  # step 4 and what is left of step 2
    result = train(tied_models[1], _texts(), tmp_path / "run", resume=True, **settings)
    assert result.steps == 6 and [r["step"] for r in result.history if r["type"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-00000006"]


def test_resume_passes_over_a_newest_checkpoint_missing_its_files(tied_models, tmp_path, monkeypatch):
    import shutil

    settings = dict(FAST, max_steps=6, save_every=2, keep_checkpoints=2)
    _crash_in_step_four(monkeypatch, lambda: train(tied_models[1], _texts(), tmp_path / "run", **settings))
    checkpoints = tmp_path / "run" / "checkpoints"
    # A half-deleted folder that still has its state file, newer than the complete one.
    shutil.copytree(checkpoints / "step-00000002", checkpoints / "step-00000004")
    (checkpoints / "step-00000004" / "model.safetensors").unlink()
    result = train(tied_models[1], _texts(), tmp_path / "run", resume=True, **settings)
    assert result.steps == 6 and [r["step"] for r in result.history if r["type"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-00000004", "step-00000006"]


def test_resuming_on_another_model_folder_is_refused_and_the_same_folder_by_another_path_is_not(tied_models, tmp_path, monkeypatch):
    other = _make_ext(tmp_path / "other", tied=True)[1]  # (the same new-token ids, other weights)
    settings = dict(FAST, max_steps=2, save_every=1)
    train(tied_models[1], _texts(), tmp_path / "run", **settings)
    with pytest.raises(VocabxError, match=rf"--resume with --model {re.escape(repr(str(other)))}, but the run in \S+ was started with --model {re.escape(repr(str(tied_models[1])))}; pass the same --model, or --overwrite to start again"):
        train(other, _texts(), tmp_path / "run", resume=True, **settings)
    monkeypatch.chdir(tied_models[1].parent)
    assert train(os.path.join("..", tied_models[1].parent.name, ".", "ext"), _texts(), tmp_path / "run", resume=True, **settings).steps == 2
    os.utime(other / "config.json", ns=(1, 1))  # (a folder rebuilt in place is another model too)
    train(other, _texts(), tmp_path / "other-run", **settings)
    os.utime(other / "config.json", ns=(2, 2))
    with pytest.raises(VocabxError, match=r"the model folder \S+ has changed since .*--overwrite"):
        train(other, _texts(), tmp_path / "other-run", resume=True, **settings)


@pytest.mark.parametrize("which", ["tied", "untied"])
def test_load_adapted_rebuilds_the_trained_model_from_the_base_or_the_extended_folder(which, tied_models, untied_models, tmp_path):
    base, ext = tied_models if which == "tied" else untied_models
    result = train(ext, _texts(), tmp_path / "run", max_steps=2, **FAST)
    ids = torch.tensor([[5, 600, 7, 601, 602, 9, 605, 607]])
    expected = _logits(result.model, ids)
    for source in (ext, base):
        torch.testing.assert_close(_logits(load_adapted(source, result.output_dir), ids), expected, rtol=0, atol=1e-5)


def test_load_adapted_onto_a_model_object_of_other_shape_is_a_one_line_error(tied_models, tmp_path):
    result = train(tied_models[1], _texts(), tmp_path / "run", max_steps=1, **FAST)
    other = tinymodels.make_causal_lm(600, hidden=16)
    with pytest.raises(VocabxError, match="but the given LlamaForCausalLM has 600 rows of size 16") as err:
        load_adapted(other, result.output_dir)
    assert "\n" not in str(err.value)


def test_load_adapted_from_a_folder_that_does_not_exist_says_so(tied_models, tmp_path):
    # (it said the folder "has no vocabx_train.json", as for a folder of something else)
    with pytest.raises(VocabxError, match=r"adapter folder '.*nosuch' does not exist; pass the -o folder of a vocabx train run"):
        load_adapted(tied_models[0], tmp_path / "nosuch")


def test_load_adapted_refuses_a_merged_model_or_an_adapter_folder_as_its_base(tied_models, tmp_path):
    # (a merged model already holds the adapter: loading it on top would apply LoRA twice)
    result = train(tied_models[1], _texts(), tmp_path / "run", max_steps=2, merge=True, **FAST)
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(result.merged_dir)
    for base in (result.merged_dir, merged):
        with pytest.raises(VocabxError, match=r"is a merged model: the adapter in \S+ is already in its weights, and loading it again would apply it twice; load the merged model as it is \(AutoModelForCausalLM.from_pretrained\), or pass the extended folder the adapter was trained on \(\S+ext\) or its base model$"):
            load_adapted(base, result.output_dir)
    with pytest.raises(VocabxError, match=r"is an adapter folder written by vocabx train, not a model; pass the extended folder the adapter was trained on \(\S+ext\) or its base model$"):
        load_adapted(result.output_dir, result.output_dir)


def test_training_some_of_the_new_rows_stores_the_others_so_the_base_model_rebuilds_it(untied_models, tmp_path):
    base, ext = untied_models
    result = train(ext, _texts(), tmp_path / "run", mode="tokens", new_token_ids="601-602", max_steps=2, **FAST)
    record = json.loads((Path(result.output_dir) / "vocabx_train.json").read_text())["extension"]
    assert record["n_base"] == 600 and record["stored_ids"] == [600, *range(603, 608)]
    ids = torch.tensor([[5, 600, 7, 601, 602, 9, 605, 607]])
    torch.testing.assert_close(_logits(load_adapted(base, result.output_dir), ids), _logits(result.model, ids), rtol=0, atol=1e-5)


def test_merge_writes_a_standard_tied_model_with_the_adapters_logits(tied_models, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vocabx.initialize import is_tied

    result = train(tied_models[1], _texts(), tmp_path / "run", max_steps=2, merge=True, **FAST)
    merged = AutoModelForCausalLM.from_pretrained(result.merged_dir)
    assert is_tied(merged) and merged.config.tie_word_embeddings
    assert len(AutoTokenizer.from_pretrained(result.merged_dir)) == 603
    ids = torch.tensor([[5, 600, 7, 601, 602, 9]])
    torch.testing.assert_close(_logits(merged, ids), _logits(result.model, ids), rtol=0, atol=1e-4)


def test_plain_peft_loads_the_adapter_onto_the_extended_folder(tied_models, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = train(tied_models[1], _texts(), tmp_path / "run", max_steps=2, **FAST)
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tied_models[1]), result.output_dir).eval()
    ids = torch.tensor([[5, 600, 7, 601, 602, 9]])
    torch.testing.assert_close(_logits(plain, ids), _logits(result.model, ids), rtol=0, atol=1e-5)


def test_a_tied_model_s_tokens_mode_adapter_holds_the_new_rows_once_and_every_loader_agrees(tied_models, tmp_path):
    import warnings

    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base, ext = tied_models
    result = train(ext, _texts(), tmp_path / "run", mode="tokens", max_steps=2, **FAST)
    stored = load_file(Path(result.output_dir) / "adapter_model.safetensors")
    # (PEFT's output layer tied to the input one shares its rows; they used to be written under both names)
    assert list(stored) == ["base_model.model.model.embed_tokens.trainable_tokens_delta"] and stored[list(stored)[0]].shape == (3, 32)
    ids = torch.tensor([[5, 600, 7, 601, 602, 9]])
    expected = _logits(result.model, ids)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for source in (ext, base):
            torch.testing.assert_close(_logits(load_adapted(source, result.output_dir), ids), expected, rtol=0, atol=1e-5)
    assert not [w for w in caught if "missing" in str(w.message)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(ext), result.output_dir).eval()
    torch.testing.assert_close(_logits(plain, ids), expected, rtol=0, atol=1e-5)
    # plain PEFT names the output layer's share of the rows as missing (documented): nothing else
    missing = [str(w.message) for w in caught if "missing adapter keys" in str(w.message)]
    assert missing in ([], ["Found missing adapter keys while loading the checkpoint: ['base_model.model.lm_head.trainable_tokens_delta.default']."])


@pytest.mark.parametrize("which", ["tied", "untied"])
def test_rows_trained_frozen_in_bf16_are_saved_exactly_so_every_loader_agrees(which, tied_models, untied_models, tmp_path):
    """bf16 training keeps the frozen matrix in bf16; the rows the adapter does not hold are still written
    as the model folder has them, so load_adapted (from the base or the folder), the merge and plain PEFT
    on the folder give the same logits."""
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from vocabx.models import load_model

    base, ext = tied_models if which == "tied" else untied_models
    result = train(ext, _texts(), tmp_path / "run", mode="lora", max_steps=1, mixed_precision="bf16", merge=True, **FAST)
    stored = load_file(Path(result.output_dir) / "extension_rows.safetensors")
    original = load_model(ext)
    assert stored["ids"].tolist() == list(range(600, 608))
    assert torch.equal(stored["input"], original.get_input_embeddings().weight[600:608].detach())
    if which == "untied":
        assert torch.equal(stored["output"], original.get_output_embeddings().weight[600:608].detach())
    ids = torch.tensor([[5, 600, 7, 601, 602, 9, 605, 607]])
    plain = _logits(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(ext), result.output_dir).eval(), ids)
    for source in (ext, base):
        torch.testing.assert_close(_logits(load_adapted(source, result.output_dir), ids), plain, rtol=0, atol=1e-5)
    torch.testing.assert_close(_logits(AutoModelForCausalLM.from_pretrained(result.merged_dir), ids), plain, rtol=0, atol=1e-4)


def test_an_extension_in_memory_trains_its_new_rows_and_loads_back(tmp_path):
    # (extend() then train() in one Python session: the Extension names its model, tokenizer and rows)
    from vocabx.extend import NewToken, extend

    tok = tinymodels.make_tokenizer("byte_bpe")
    ext = extend(tinymodels.make_causal_lm(len(tok)), [NewToken(*a) for a in ADDED], tokenizer=tok)
    result = train(ext, _texts(), tmp_path / "run", max_steps=1, **FAST)
    record = json.loads((Path(result.output_dir) / "vocabx_train.json").read_text())
    assert record["extension"]["trainable_ids"] == ext.new_ids == [600, 601, 602]
    ids = torch.tensor([[5, 600, 7, 602]])

    def fresh():  # (train() puts PEFT's layers into the model it is given: each run its own extension)
        return extend(tinymodels.make_causal_lm(len(tok)), [NewToken(*a) for a in ADDED], tokenizer=tok)

    loaded = load_adapted(fresh().model, result.output_dir)
    assert torch.allclose(_logits(loaded.eval(), ids), _logits(result.model.eval(), ids), atol=1e-5)
    # the ids as a list, as extension.new_ids gives them
    again = fresh()
    listed = train(again.model, _texts(), tmp_path / "listed", tokenizer=again.tokenizer, new_token_ids=[600, 602], mode="tokens", max_steps=1, **FAST)
    assert json.loads((Path(listed.output_dir) / "vocabx_train.json").read_text())["extension"]["trainable_ids"] == [600, 602]
    with pytest.raises(VocabxError, match=r"a model object has no vocabx.json naming them; pass the Extension that vocabx.extend returned"):
        train(fresh().model, _texts(), tmp_path / "bare", tokenizer=tok, max_steps=1, **FAST)
    with pytest.raises(VocabxError, match=r"--new-token-ids must be token ids \(ints >= 0\) .* got \[600, -1\]"):
        train(fresh(), _texts(), tmp_path / "bad", new_token_ids=[600, -1], max_steps=1, **FAST)


def test_train_reads_a_dataset_s_text_and_refuses_what_is_not_text(tied_models, tmp_path):
    datasets = pytest.importorskip("datasets")
    ext = tied_models[1]
    given = datasets.Dataset.from_dict({"text": _texts() + [None], "id": list(range(len(_texts()) + 1))})
    from_dataset = train(ext, given, tmp_path / "ds", max_steps=2, **FAST)
    from_list = train(ext, _texts(), tmp_path / "list", max_steps=2, **FAST)
    assert _losses(Path(from_dataset.output_dir)) == _losses(Path(from_list.output_dir))  # (None is no document)
    for texts, message in (
        ("one long note", r"texts is one str of 13 characters, not a list of documents"),
        (_texts()[:3] + [{"text": "x"}], r"texts: document 3 is dict .*, not text; pass str documents"),
        (given.remove_columns("text").add_column("input_ids", [[1]] * len(given)), r"texts: the dataset has no column 'text' \(it is already tokenized"),
    ):
        with pytest.raises(VocabxError, match=message):
            train(ext, texts, tmp_path / "bad", max_steps=1, **FAST)
        assert not (tmp_path / "bad").exists()  # (refused before any folder is made)


def test_a_model_object_keeps_its_dtype_when_training_in_bf16(tied_models, tmp_path):
    from vocabx.models import load_model, load_tokenizer

    ext = tied_models[1]
    model = load_model(ext)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    result = train(model, _texts(), tmp_path / "run", tokenizer=load_tokenizer(ext), mode="lora", max_steps=1, mixed_precision="bf16", **FAST)
    # the caller's weights are neither cast nor rounded (PEFT adds its layers around them, as it always does)
    after = dict(result.model.get_base_model().named_parameters())
    for name, p in before.items():
        kept = after[name] if name in after else after[name.replace(".weight", ".base_layer.weight")]
        assert kept.dtype == torch.float32 and torch.equal(kept, p), name
    assert json.loads((Path(result.output_dir) / "vocabx_train.json").read_text())["mixed_precision"] == "bf16"


def test_only_the_newest_checkpoints_are_kept(tied_models, tmp_path):
    result = train(tied_models[1], _texts(), tmp_path / "run", **dict(FAST, max_steps=5, save_every=1, keep_checkpoints=2))
    names = sorted(p.name for p in (Path(result.output_dir) / "checkpoints").iterdir())
    assert names == ["step-00000004", "step-00000005"]
    assert (Path(result.output_dir) / "checkpoints" / names[-1] / "model.safetensors").stat().st_size < 200_000


# ---------------------------------------------------------------------------------------------------
# Command line


def test_cli_json_has_the_contract_keys_and_config_file_values_yield_to_flags(tied_models, corpus_file, tmp_path, capsys):
    config = tmp_path / "settings.yaml"
    config.write_text("max-steps: 5\nbatch_size: 2\nblock-size: 32\nlora_r: 4\neval_every: 0\nsave_every: 0\n")
    assert main(["train", "--model", str(tied_models[1]), str(corpus_file), "-o", str(tmp_path / "run"), "--config", str(config), "--max-steps", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"train_loss", "eval_bpb", "steps", "tokens_per_second"} <= set(result)
    assert result["steps"] == 2 and result["tokens_per_second"] > 0
    saved = (tmp_path / "run" / "train_config.yaml").read_text()
    assert "max_steps: 2" in saved and "lora_r: 4" in saved


def test_cli_replays_a_general_corpus_at_the_given_fraction(tied_models, corpus_file, tmp_path, capsys):
    general = tmp_path / "general.jsonl"
    general.write_text("".join(json.dumps({"text": f"Weather report {i}: rain in the north, sun in the south."}) + "\n" for i in range(40)))
    args = ["train", "--model", str(tied_models[1]), str(corpus_file), "-o", str(tmp_path / "run"), "--max-steps", "2", "--batch-size", "2", "--block-size", "32"]
    assert main(args + ["--replay", str(general), "--replay-fraction", "0.5", "--json"]) == 0
    data = json.loads((tmp_path / "run" / "vocabx_train.json").read_text())["data"]
    assert data["replay_docs"] == 40 and data["replay_fraction"] == 0.5
    line = _error(capsys, *args, "--replay", str(general), "--replay-fraction", "1", "--overwrite")
    assert "--replay-fraction must be in (0, 1), got 1.0" in line


def _error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("vocabx: error: ")
    return lines[-1]


def test_a_model_without_a_manifest_needs_new_token_ids_or_lora_mode(tied_models, corpus_file, tmp_path, capsys):
    line = _error(capsys, "train", "--model", str(tied_models[0]), str(corpus_file), "-o", str(tmp_path / "run"))
    assert "--mode lora+tokens trains the new tokens' rows" in line and "has no vocabx.json" in line and "--new-token-ids" in line
    assert main(["train", "--model", str(tied_models[0]), str(corpus_file), "-o", str(tmp_path / "ok"), "--new-token-ids", "590-599", "--max-steps", "1", "--batch-size", "2", "--block-size", "32", "--quiet"]) == 0


def test_new_token_ids_outside_the_matrix_name_the_rows_there_are(tied_models, tmp_path):
    from vocabx.train.config import format_ids

    assert format_ids([600, 601, 602, 605, 607]) == "600-602,605,607"
    with pytest.raises(VocabxError, match=r"^--new-token-ids 608-9999 are outside the embedding matrix of 608 rows \(ids 0-607\); give ids below 608, such as the 3 tokens the model's vocabx.json adds: 600-602$"):
        train(tied_models[1], _texts(), tmp_path / "run", new_token_ids="600-9999", max_steps=1, **FAST)
    with pytest.raises(VocabxError, match=r"^--new-token-ids 700 is outside the embedding matrix of 600 rows \(ids 0-599\); give ids below 600$"):
        train(tied_models[0], _texts(), tmp_path / "run", new_token_ids="590,700", max_steps=1, **FAST)

@pytest.mark.parametrize("mode", ["lora+tokens", "lora"])
def test_an_adapter_folder_given_as_the_model_is_refused_naming_the_model_it_was_trained_on(mode, tied_models, tmp_path):
    adapter = train(tied_models[1], _texts(), tmp_path / "run", max_steps=1, **FAST).output_dir
    with pytest.raises(VocabxError, match=rf"--model {re.escape(repr(adapter))} is an adapter folder written by vocabx train \(LoRA and new rows only\), not a model; pass the extended folder it was trained on \(\S+ext\), or load it with vocabx.load_adapted$"):
        train(adapter, _texts(), tmp_path / "again", mode=mode, max_steps=1, **FAST)
    assert not (tmp_path / "again").exists()

def test_a_block_longer_than_the_context_is_refused(tied_models, corpus_file, tmp_path, capsys):
    line = _error(capsys, "train", "--model", str(tied_models[1]), str(corpus_file), "-o", str(tmp_path / "run"), "--block-size", "1024")
    assert "--block-size 1024 is longer than the model's context of 256 tokens" in line


def test_a_corpus_too_small_for_one_batch_is_refused(tied_models, tmp_path, capsys):
    small = tmp_path / "small.txt"
    small.write_text("The patient was admitted for chest pain.")
    line = _error(capsys, "train", "--model", str(tied_models[1]), str(small), "-o", str(tmp_path / "run"), "--block-size", "32")
    assert "fewer than one batch of 2 (--batch-size 2 x 1 processes)" in line


def test_an_existing_output_folder_needs_resume_or_overwrite(tied_models, corpus_file, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    line = _error(capsys, "train", "--model", str(tied_models[1]), str(corpus_file), "-o", str(tmp_path / "run"))
    assert "exists and is not empty; pass --resume" in line and "--overwrite" in line
    line = _error(capsys, "train", "--model", str(tied_models[1]), str(corpus_file), "-o", str(tmp_path / "run"), "--resume")
    assert "nothing to resume" in line
    line = _error(capsys, "train", "--model", str(tied_models[1]), str(corpus_file), "-o", str(tmp_path / "run"), "--overwrite")
    assert "holds no vocabx_train.json" in line and (tmp_path / "run" / "notes.txt").is_file()


def test_resuming_with_other_settings_names_the_flag(tied_models, corpus_file, tmp_path, capsys):
    args = ["train", "--model", str(tied_models[1]), str(corpus_file), "-o", str(tmp_path / "run"), "--max-steps", "2", "--batch-size", "2", "--block-size", "32", "--save-every", "1", "--quiet"]
    assert main(args) == 0
    line = _error(capsys, *args, "--resume", "--lora-r", "8")
    assert "--resume with --lora-r 8, but the run was started with 4" in line


def test_a_nan_loss_stops_naming_the_step_and_keeps_the_checkpoint(tied_models, corpus_file, tmp_path, capsys, monkeypatch):
    vt = importlib.import_module("vocabx.train.loop")

    real = vt._forward_loss
    calls = {"n": 0}

    def nan_at_three(step, ids):
        calls["n"] += 1
        loss = real(step, ids)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(vt, "_forward_loss", nan_at_three)
    line = _error(capsys, "train", "--model", str(tied_models[1]), str(corpus_file), "-o", str(tmp_path / "run"), "--max-steps", "5", "--batch-size", "2", "--block-size", "32", "--save-every", "2", "--quiet")
    assert "the loss became nan at step 3" in line and "step-00000002, is kept" in line
    assert (tmp_path / "run" / "checkpoints" / "step-00000002" / "vocabx_state.json").is_file()


def test_out_of_memory_suggests_a_smaller_batch_or_checkpointing(tied_models, corpus_file, tmp_path, capsys, monkeypatch):
    vt = importlib.import_module("vocabx.train.loop")

    def oom(step, ids):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(vt, "_forward_loss", oom)
    line = _error(capsys, "train", "--model", str(tied_models[1]), str(corpus_file), "-o", str(tmp_path / "run"), "--batch-size", "2", "--block-size", "32", "--quiet")
    assert "out of memory at step 1 with --batch-size 2 x --block-size 32" in line and "--gradient-checkpointing" in line


def test_out_of_memory_before_the_first_step_says_the_model_does_not_fit(tied_models, tmp_path, monkeypatch):
    vt = importlib.import_module("vocabx.train.loop")

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(vt, "_enable_fused", oom)
    with pytest.raises(VocabxError, match=r"^out of memory preparing the model on cpu, before the first step \(no batch of --batch-size 2 has run yet\): "
                       r"the model and its trained weights do not fit; pass --mixed-precision bf16 to hold the frozen weights in bf16, or use a device with more memory$") as caught:
        train(tied_models[1], _texts(), tmp_path / "run", **dict(FAST, max_steps=1))
    assert not getattr(caught.value, "on_every_process", False)  # (each process that meets it says so)
    assert not (tmp_path / "run").exists()

def test_a_non_finite_gradient_stops_before_the_step_and_keeps_the_checkpoint(tied_models, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    vt = importlib.import_module("vocabx.train.loop")
    real = vt._forward_loss
    calls = {"n": 0}

    def inf_gradient_at_four(step, ids):  # (the loss stays finite; its gradient does not)
        calls["n"] += 1
        loss = real(step, ids)
        return loss + torch.sqrt(loss - loss.detach()) if calls["n"] == 4 else loss

    monkeypatch.setattr(vt, "_forward_loss", inf_gradient_at_four)
    with pytest.raises(VocabxError, match=r"the gradient became (nan|inf) at step 4 \(loss [0-9.]+\); training stopped before applying it and the last checkpoint, \S*step-00000002, is kept"):
        train(tied_models[1], _texts(), tmp_path / "run", **dict(FAST, max_steps=6, save_every=2, keep_checkpoints=1, max_grad_norm=0.0))
    kept = load_file(str(tmp_path / "run" / "checkpoints" / "step-00000002" / "model.safetensors"))
    assert all(bool(torch.isfinite(t).all()) for t in kept.values())


def test_out_of_memory_while_evaluating_names_the_eval_batch(tied_models, tmp_path, monkeypatch):
    vt = importlib.import_module("vocabx.train.loop")

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(vt, "_evaluate", oom)
    with pytest.raises(VocabxError, match=r"out of memory evaluating after step 2 with --eval-batch-size 8 x --block-size 32: lower --eval-batch-size; --resume with a smaller value finishes the run from \S*step-00000002$"):
        train(tied_models[1], _texts(), tmp_path / "run", **dict(FAST, max_steps=2, save_every=2))


def test_a_refused_overwrite_leaves_the_earlier_run_in_place(tied_models, tmp_path):
    train(tied_models[1], _texts(), tmp_path / "run", **dict(FAST, max_steps=1))
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    with pytest.raises(VocabxError, match="--block-size 100000 is longer than the model's context"):
        train(tied_models[1], _texts(), tmp_path / "run", overwrite=True, **dict(FAST, max_steps=1, block_size=100000))
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before and "adapter_model.safetensors" in before


def test_resuming_with_another_length_is_refused_and_a_finished_run_logs_its_last_eval_once(tied_models, tmp_path):
    settings = dict(FAST, max_steps=2, save_every=1)
    train(tied_models[1], _texts(), tmp_path / "run", **settings)
    # (the cosine schedule and its warmup are built for the run's length)
    with pytest.raises(VocabxError, match="--resume with --max-steps 4, but the run was started with 2; pass the same value"):
        train(tied_models[1], _texts(), tmp_path / "run", resume=True, **{**settings, "max_steps": 4})
    first = json.loads((tmp_path / "run" / "vocabx_train.json").read_text())["metrics"]["tokens_per_second"]
    again = train(tied_models[1], _texts(), tmp_path / "run", resume=True, **settings)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["type"] == "eval"] == [2]
    # (the resume trained nothing: it reports the run's rate, not 0 tokens/s over the measured figure)
    assert first > 0 and again.tokens_per_second > 0
    assert json.loads((tmp_path / "run" / "vocabx_train.json").read_text())["metrics"]["tokens_per_second"] > 0


def test_a_refused_resume_names_every_other_setting_and_the_file_holding_the_run_s(tied_models, tmp_path, monkeypatch):
    settings = dict(FAST, max_steps=6, save_every=2, lora_r=8)
    _crash_in_step_four(monkeypatch, lambda: train(tied_models[1], _texts(), tmp_path / "run", **settings))
    saved = tmp_path / "run" / "train_config.yaml"
    with pytest.raises(VocabxError, match=rf"^--resume with --max-steps unset, but the run was started with 6; --resume with --lora-r 4, but the run was started with 8; "
                       rf"pass the same values, or --config {re.escape(str(saved))}, which holds the run's settings$"):
        train(tied_models[1], _texts(), tmp_path / "run", resume=True, **{**settings, "max_steps": None, "lora_r": 4})
    assert train(tied_models[1], _texts(), tmp_path / "run", TrainConfig.from_file(saved), resume=True, progress=False).steps == 6

def test_resuming_with_another_eval_split_names_the_flag_not_the_corpus(tied_models, tmp_path):
    settings = dict(FAST, max_steps=2, save_every=1)  # (FAST holds 4 of the split's eval documents; the rest train)
    train(tied_models[1], _texts(), tmp_path / "run", **settings)
    with pytest.raises(VocabxError, match=r"--resume with --max-eval-docs 8, but the run was started with 4, which moves documents between its training and eval splits; pass --max-eval-docs 4$"):
        train(tied_models[1], _texts(), tmp_path / "run", resume=True, **{**settings, "max_eval_docs": 8})
    with pytest.raises(VocabxError, match=r"--resume with --eval-fraction 0.2, but the run was started with 0.05, which moves .*; pass --eval-fraction 0.05$"):
        train(tied_models[1], _texts(), tmp_path / "run", resume=True, **{**settings, "eval_fraction": 0.2})
    with pytest.raises(VocabxError, match="--resume with a different training corpus than the run was started with"):
        train(tied_models[1], _texts()[1:], tmp_path / "run", resume=True, **settings)
    # (with eval texts of its own, the split settings do not touch the training data)
    train(tied_models[1], _texts(), tmp_path / "given", eval_texts=_texts(1)[:4], **settings)
    assert train(tied_models[1], _texts(), tmp_path / "given", eval_texts=_texts(1)[:4], resume=True, **{**settings, "max_eval_docs": 8}).steps == 2

def test_embedding_warmup_must_leave_lora_steps_in_the_computed_length(tied_models, tmp_path):
    with pytest.raises(VocabxError, match=r"--embedding-warmup-steps 500 leaves no LoRA steps: one pass over this corpus is \d+ steps"):
        train(tied_models[1], _texts(), tmp_path / "run", **dict(FAST, embedding_warmup_steps=500))


def test_a_warmup_as_long_as_the_run_is_refused_not_left_below_the_peak(tied_models, tmp_path):
    # (the learning rate would climb for the whole run and never reach --lr)
    with pytest.raises(VocabxError, match=r"^--warmup-steps 10 leaves no steps at the peak learning rate within --max-steps 10; lower it \(default: 5% of the steps\)$"):
        TrainConfig(max_steps=10, warmup_steps=10)
    with pytest.raises(VocabxError, match=r"^--warmup-steps 500 leaves no steps at the peak learning rate: one pass over this corpus is \d+ steps; lower it or pass a larger --max-steps$"):
        train(tied_models[1], _texts(), tmp_path / "run", **dict(FAST, warmup_steps=500))
    assert TrainConfig(max_steps=10, warmup_steps=9).warmup_steps == 9

def test_merge_with_full_mode_is_refused_not_ignored():
    with pytest.raises(VocabxError, match="--merge merges LoRA into the model, but --mode full trains no LoRA"):
        TrainConfig(mode="full", merge=True)


def test_a_bad_max_steps_is_named_alone():
    with pytest.raises(VocabxError) as caught:
        TrainConfig(max_steps=0, embedding_warmup_steps=0)
    assert "--max-steps" in str(caught.value) and "--embedding-warmup-steps" not in str(caught.value)


def test_bad_settings_are_collected_into_one_error_naming_each_flag():
    with pytest.raises(VocabxError) as caught:
        TrainConfig(mode="adapter", batch_size=0, lr=-1, lora_dropout=1.5, rows_update="lazy", row_mass=0)
    message = str(caught.value)
    for part in ("--mode must be one of", "--batch-size must be a positive int", "--lr must be a positive number", "--lora-dropout must be in [0, 1)",
                 "--rows-update must be sparse, active or dense, got 'lazy'", "--row-mass must be a positive number, got 0"):
        assert part in message


def test_compile_setting_takes_auto_yes_no_and_booleans(tmp_path):
    from vocabx.train.loop import _should_compile

    assert TrainConfig().compile == "auto"
    assert TrainConfig(compile=True).compile == "yes" and TrainConfig(compile=False).compile == "no"
    path = tmp_path / "c.yaml"
    path.write_text("compile: true\n")
    assert TrainConfig.from_file(path).compile == "yes"
    with pytest.raises(VocabxError, match=r"--compile must be auto, yes or no, got 'maybe'"):
        TrainConfig(compile="maybe")
    assert not _should_compile("auto", "cpu") and _should_compile("yes", "cpu") and not _should_compile("no", "cuda")


def test_an_unknown_config_key_names_the_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("max_step: 3\n")
    with pytest.raises(VocabxError, match=r"unknown setting 'max_step'; known: .*max_steps"):
        TrainConfig.from_file(path)


def test_a_config_file_reads_numbers_and_words_as_their_settings_mean(tmp_path):
    path = tmp_path / "c.yaml"
    # (YAML 1.1 reads 1e-3 as a string and no as false)
    path.write_text("lr: 1e-3\nembedding-lr: 5e-4\nmixed_precision: no\nlora_alpha: 16\n")
    config = TrainConfig.from_file(path)
    assert (config.lr, config.embedding_lr, config.mixed_precision, config.lora_alpha) == (1e-3, 5e-4, "no", 16)
    path.write_text("max-steps: 5\nmax_steps: 9\n")
    with pytest.raises(VocabxError, match=r"sets 'max_steps' twice \(as 'max_steps' too\); keep one"):
        TrainConfig.from_file(path)
    path.write_text("lr: fast\n")
    with pytest.raises(VocabxError, match=r"--lr must be a positive number, got 'fast'"):
        TrainConfig.from_file(path)


def test_a_bad_value_in_a_config_file_names_the_file_and_a_flag_overriding_it_wins(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("batch_size: two\nlora_r: 0\n")
    with pytest.raises(VocabxError) as caught:
        TrainConfig.from_file(path, lr=-1.0)
    problems = str(caught.value).split("; ")
    assert f"--batch-size must be a positive int, got 'two' (set in --config {str(path)!r})" in problems
    assert f"--lora-r must be a positive int, got 0 (set in --config {str(path)!r})" in problems
    assert "--lr must be a positive number, got -1.0" in problems  # (the flag's own value: no file to name)
    assert TrainConfig.from_file(path, batch_size=2, lora_r=4).batch_size == 2


def test_a_config_file_takes_lists_for_the_comma_separated_settings(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lora_targets: [q_proj, v_proj]\nnew_token_ids: [600, 601-602]\n")
    config = TrainConfig.from_file(path)
    assert (config.lora_targets, config.new_token_ids) == ("q_proj,v_proj", "600,601-602")

def test_two_processes_under_accelerate_launch(tied_models, corpus_file, tmp_path):
    # On CPU, accelerate launch starts several processes through torchrun only with --multi_gpu (its
    # --cpu flag launches one process, or needs mpirun); the processes then find no GPU and use gloo.
    env = {**os.environ, "VOCABX_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "-m", "vocabx", "train", "--model", str(tied_models[1]), str(corpus_file), "-o", str(tmp_path / "run"), "--max-steps", "2", "--batch-size", "2", "--block-size", "32", "--save-every", "2", "--json", "--quiet"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-6000:]
    json_lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(json_lines) == 1 and run.stderr.count("step 2: checkpoint") == 1  # only the main process reports
    result = json.loads(json_lines[0])
    assert result["steps"] == 2 and result["tokens"] == 2 * 2 * 2 * 32
    assert json.loads((tmp_path / "run" / "vocabx_train.json").read_text())["processes"] == 2
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints" / "step-00000002").glob("random_states_*")) == ["random_states_0.pkl", "random_states_1.pkl"]
    assert time.monotonic() - started < 120


def test_a_refused_resume_under_accelerate_launch_is_said_once_and_every_process_fails(corpus_file, tmp_path):
    env = {**os.environ, "VOCABX_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "-m", "vocabx", "train", "--model", str(tmp_path / "ext"), str(corpus_file), "-o", str(tmp_path / "run"), "--resume", "--quiet"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert run.returncode != 0
    assert run.stderr.count("vocabx: error: ") == 1 and f"vocabx: error: nothing to resume in {tmp_path / 'run'}" in run.stderr, run.stderr[-4000:]
    # (torchrun's summary of the failed processes: both exited with the CLI's code for bad input)
    assert len(re.findall(r"exitcode\s*: 2 ", run.stderr)) == 2, run.stderr[-4000:]


def test_only_the_main_process_says_an_error_that_every_process_raises(tied_models, corpus_file, tmp_path, capsys, monkeypatch):
    args = ["train", "--model", str(tied_models[1]), str(corpus_file), "-o", str(tmp_path / "run"), "--resume"]
    monkeypatch.setenv("RANK", "1")
    assert main(args) == 2
    assert capsys.readouterr().err == ""
    assert main([*args[:3], str(tmp_path / "missing.txt"), *args[4:]]) == 2  # (a flag's error, before train())
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    assert "vocabx: error: nothing to resume" in _error(capsys, *args)


def _processes_naming(text: str) -> list[int]:
    """The live processes whose command line holds ``text`` (Linux's /proc; zombies count as gone)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds the workers through Linux's /proc")
def test_workers_stop_when_the_launcher_is_killed(tied_models, corpus_file, tmp_path):
    # torchrun starts each worker in a session of its own: a SIGKILL to the launcher's process group
    # reaches the launcher alone, and the workers, reparented, would go on writing into -o.
    import signal

    env = {**os.environ, "VOCABX_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "-m", "vocabx", "train", "--model", str(tied_models[1]), str(corpus_file), "-o", str(out), "--max-steps", "100000", "--batch-size", "2", "--block-size", "32",
         "--save-every", "20", "--eval-every", "0", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "stderr.txt").open("w"), cwd=ROOT, env=env, start_new_session=True,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not ((out / "log.jsonl").is_file() and (out / "log.jsonl").stat().st_size > 0):
            assert launcher.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr.txt").read_text()[-4000:]
            time.sleep(0.2)
        workers = [pid for pid in _processes_naming(str(out)) if pid != launcher.pid]
        assert len(workers) == 2
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
        killed = time.monotonic()
        while _processes_naming(str(out)) and time.monotonic() - killed < 10:
            time.sleep(0.1)
        assert _processes_naming(str(out)) == [], "the workers outlived their launcher"
        assert time.monotonic() - killed < 10
        said = (tmp_path / "stderr.txt").read_text()
        # (the first to notice says why; the other may instead stop on the collective its peer left)
        assert "vocabx: error: the launcher that started this process" in said and "stops training into" in said, said[-4000:]
        # (what they left is a run that --resume continues: no checkpoint half written)
        steps = sorted(p.name for p in (out / "checkpoints").iterdir()) if (out / "checkpoints").is_dir() else []
        assert all(re.fullmatch(r"step-\d{8}", name) or name.startswith(".") for name in steps)
    finally:
        for pid in workers:  # (before the fix: the workers this test started would train on)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)


def test_the_launcher_watchdog_fires_on_a_change_of_parent_only(monkeypatch):
    from vocabx.train import watchdog

    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert not watchdog.launched_by_torchrun()  # (a plain run may outlive its shell: nohup)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert watchdog.launched_by_torchrun()
    exits = []
    monkeypatch.setattr(watchdog.os, "_exit", exits.append)
    # a launcher that is PID 1 from the start (a container's entry point) is not a dead one
    monkeypatch.setattr(watchdog, "_STARTED", (os.getpid(), 1))
    monkeypatch.setattr(watchdog.os, "getppid", lambda: 1)
    with watchdog.launcher_watchdog("run", interval=0.01):
        time.sleep(0.1)
    assert exits == []
    monkeypatch.setattr(watchdog, "_STARTED", (os.getpid(), 4242))
    parents = iter([4242] * 3 + [1] * 1000)  # the launcher 4242 dies during training: reparented to init
    monkeypatch.setattr(watchdog.os, "getppid", lambda: next(parents))
    with watchdog.launcher_watchdog("run", interval=0.01):
        time.sleep(0.1)
    assert exits and set(exits) == {watchdog.EXIT_ORPHANED}
    # the launcher died before training began (while the worker read its corpus): the parent at import counts
    exits.clear()
    monkeypatch.setattr(watchdog.os, "getppid", lambda: 1)
    with watchdog.launcher_watchdog("run", interval=0.01):
        time.sleep(0.1)
    assert exits and set(exits) == {watchdog.EXIT_ORPHANED}
    # a process forked after the import compares with its own parent, not its parent's
    exits.clear()
    monkeypatch.setattr(watchdog, "_STARTED", (os.getpid() + 1, 4242))
    with watchdog.launcher_watchdog("run", interval=0.01):
        time.sleep(0.1)
    assert exits == []


# ---------------------------------------------------------------------------------------------------
# The embedded model


@pytest.mark.slow
def test_smollm2_adapter_is_small_and_reloads_with_the_same_logits(smollm2_dir, smollm2_tokenizer, tmp_path):
    from vocabx.extend import extend, save_extension, tokens_from_terms
    from vocabx.models import load_model

    new, _ = tokens_from_terms(["hepatosplenomegaly", "lymphadenopathy", "echocardiogram"], smollm2_tokenizer)
    ext = extend(load_model("smollm2-135m"), new, tokenizer=smollm2_tokenizer, pad_to_multiple_of=64, base_spec="smollm2-135m")
    save_extension(ext, tmp_path / "ext")
    result = train(tmp_path / "ext", _texts(1), tmp_path / "run", max_steps=2, batch_size=2, block_size=64, eval_every=0, save_every=0, max_eval_docs=2, progress=False)
    assert result.adapter_bytes < 3_000_000  # LoRA r16 on 30 blocks plus 3 rows, not 2 x 113 MB of embeddings
    ids = torch.tensor([[1, ext.new_ids[0], 314, ext.new_ids[1], 42]])
    torch.testing.assert_close(_logits(load_adapted("smollm2-135m", result.output_dir), ids), _logits(result.model, ids), rtol=0, atol=1e-4)


def test_without_a_bar_training_logs_a_line_at_each_tenth_of_the_run():
    from vocabx.train import milestone

    assert [s for s in range(1, 301) if milestone(s, 300)] == list(range(30, 301, 30))
    assert [s for s in range(1, 6) if milestone(s, 5)] == [1, 2, 3, 4, 5]
    assert [s for s in range(1, 13) if milestone(s, 12)] == list(range(1, 13))  # (the quick budget: no step missing)
    assert [s for s in range(1, 22) if milestone(s, 21)] == [3, 5, 7, 9, 11, 13, 15, 17, 19, 21]


# ---------------------------------------------------------------------------------------------------
# Replay of general text


def test_replayed_samples_are_spread_evenly_at_the_fraction():
    from vocabx.train.loop import _Replay

    replay = _Replay(0.25)
    flags = [replay.replayed(i + 1) > replay.replayed(i) for i in range(40)]
    assert sum(flags) == 10 and flags[:8] == [False, False, False, True] * 2
    third = _Replay(1 / 3)
    assert sum(third.replayed(i + 1) > third.replayed(i) for i in range(300)) == 100  # exact, no float drift


def test_replay_blocks_enter_the_batches_and_a_resumed_run_reads_the_same(tied_models, tmp_path, monkeypatch):
    vt = importlib.import_module("vocabx.train.loop")
    general = [f"Weather report {i}: rain in the north, sun in the south, wind from the west." for i in range(40)]
    settings = dict(FAST, max_steps=6, save_every=3, replay_fraction=0.5)
    real = vt._forward_loss
    seen: list = []

    def record(step, ids):
        seen.append(ids.clone())
        return real(step, ids)

    monkeypatch.setattr(vt, "_forward_loss", record)
    whole = train(tied_models[1], _texts(), tmp_path / "whole", replay_texts=general, **settings)
    monkeypatch.setattr(vt, "_forward_loss", real)
    assert whole.tokens == 6 * 2 * 32
    tok = whole.tokenizer
    weather = tok("Weather", add_special_tokens=False)["input_ids"][0]
    # half of the 12 sampled blocks are the weather reports': each batch of two holds one
    assert all(int((batch == weather).any(dim=1).sum()) == 1 for batch in seen)
    data = json.loads((tmp_path / "whole" / "vocabx_train.json").read_text())["data"]
    assert data["replay_docs"] == 40 and data["replay_fraction"] == 0.5 and data["replay_blocks"] >= 1
    # three steps, a crash, then a resume: the same losses
    _crash_in_step_four(monkeypatch, lambda: train(tied_models[1], _texts(), tmp_path / "split", replay_texts=general, **settings))
    train(tied_models[1], _texts(), tmp_path / "split", replay_texts=general, resume=True, **settings)
    assert _losses(tmp_path / "split") == pytest.approx(_losses(tmp_path / "whole"), rel=1e-6, abs=0)
    with pytest.raises(VocabxError, match="--resume with different --replay text"):
        train(tied_models[1], _texts(), tmp_path / "split", resume=True, **settings)
    with pytest.raises(VocabxError, match=r"--replay-fraction must be in \(0, 1\), got 1.5"):
        train(tied_models[1], _texts(), tmp_path / "bad", replay_texts=general, **{**settings, "replay_fraction": 1.5})


def test_split_new_writes_a_share_of_the_new_tokens_with_their_pieces(tied_models, tmp_path):
    run = train(tied_models[1], _texts(), tmp_path / "run", **dict(FAST, max_steps=2, split_new=0.5))
    saved = json.loads((Path(run.output_dir) / "vocabx_train.json").read_text())
    counts = saved["data"]["split_new"]
    assert counts["occurrences"] > 0 and 0 < counts["split"] < counts["occurrences"]
    assert counts["tokens_after"] > counts["tokens"] and saved["config"]["split_new"] == 0.5
    with pytest.raises(VocabxError, match="--split-new writes new tokens with their base pieces"):
        train(tied_models[0], _texts(), tmp_path / "bare", **dict(FAST, max_steps=1, new_token_ids="590-599", split_new=0.5))
    with pytest.raises(VocabxError, match=r"--split-new must be in \[0, 1\), got 1"):
        TrainConfig(split_new=1)


def test_split_new_refuses_pieces_that_are_not_base_tokens(tied_models, tmp_path):
    import shutil

    folder = tmp_path / "ext"
    shutil.copytree(tied_models[1], folder)
    manifest = json.loads((folder / "vocabx.json").read_text())
    manifest["added"][0]["pieces"] = [manifest["added"][1]["token"]]  # another new token, not a base one
    (folder / "vocabx.json").write_text(json.dumps(manifest))
    with pytest.raises(VocabxError, match="that are not base tokens of this tokenizer; rewrite the folder with vocabx extend or leave --split-new at 0"):
        train(folder, _texts(), tmp_path / "run", **dict(FAST, max_steps=1, split_new=0.5))
