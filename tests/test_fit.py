"""Fitted rows (vocabx.fit): tiny models built in the test, and the real smollm2-135m on the project's corpus."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

import tinymodels
from vocabx.errors import VocabxError
from vocabx.extend import NewToken, extend
from vocabx.fit import FitSettings, fit_extension, fit_rows

ROOT = Path(__file__).resolve().parents[1]
WORDS = [" hepatosplenomegaly", " lymphadenopathy", " echocardiogram", " cholecystectomy"]


def _docs(folder: str = "medical", n: int = 120) -> list[str]:
    from vocabx import read_corpus

    return [t for _, t in zip(range(n), read_corpus(ROOT / "corpora" / folder))]


def _tiny_extension(tokenizer, *, tied: bool = True):
    new = [NewToken("Ġ" + w[1:], w, "word") for w in WORDS if len(tokenizer.tokenize(w)) > 1]
    assert len(new) >= 2
    return extend(tinymodels.make_causal_lm(len(tokenizer), tied=tied), new, tokenizer=tokenizer, init="mean")


def _texts() -> list[str]:
    sentences = [f"Patient {i} had{w} noted on examination, and{WORDS[(i + 1) % 4]} was planned." for i, w in enumerate(WORDS * 30)]
    return [" ".join(sentences[i : i + 6]) for i in range(0, len(sentences), 6)]


def _loss(model, tokenizer, texts) -> float:
    import torch

    ids = torch.tensor([tokenizer(" ".join(texts), add_special_tokens=False)["input_ids"][:200]])
    with torch.no_grad():
        return model(input_ids=ids, labels=ids).loss.item()


@pytest.mark.parametrize("tied", [True, False])
def test_fit_lowers_the_loss_and_moves_only_the_new_rows(tiny_tokenizers, tied):
    import torch

    base = tiny_tokenizers["byte_bpe"]
    ext = _tiny_extension(base, tied=tied)
    before = {n: p.detach().clone() for n, p in ext.model.named_parameters()}
    flags = {n: p.requires_grad for n, p in ext.model.named_parameters()}
    loss_before = _loss(ext.model, ext.tokenizer, _texts())
    summary = fit_extension(ext, _texts(), base_tokenizer=base, settings=FitSettings(steps=30, batch_size=2, block_size=32, lr=3e-3))
    assert summary["version"] == "fit.v1" and summary["steps"] == 30
    assert summary["loss_end"] < summary["loss_start"]
    assert _loss(ext.model, ext.tokenizer, _texts()) < loss_before
    new = torch.tensor(ext.new_ids)
    old = torch.ones(len(ext.tokenizer), dtype=torch.bool)
    old[new] = False
    for name, p in ext.model.named_parameters():
        assert p.requires_grad == flags[name], name  # flags restored
        if p.shape[0] == len(ext.tokenizer) and p.dim() == 2:
            assert torch.equal(p[old], before[name][old]), name
            assert not torch.equal(p[new], before[name][new]), name
        else:
            assert torch.equal(p, before[name]), name
    w_in, w_out = ext.model.get_input_embeddings().weight, ext.model.get_output_embeddings().weight
    assert (w_in is w_out) == tied or (tied and w_in.data_ptr() == w_out.data_ptr())
    assert ext.manifest["init"]["fit"] == summary


def test_fit_is_deterministic_for_a_seed(tiny_tokenizers):
    import torch

    base = tiny_tokenizers["byte_bpe"]
    rows = []
    for _ in range(2):
        ext = _tiny_extension(base)
        fit_extension(ext, _texts(), base_tokenizer=base, settings=FitSettings(steps=3, batch_size=2, block_size=32, seed=5))
        rows.append(ext.model.get_input_embeddings().weight[ext.new_ids].detach().clone())
    assert torch.equal(rows[0], rows[1])


def test_general_text_is_replayed_in_a_share_of_each_batch(tiny_tokenizers):
    import torch

    base = tiny_tokenizers["byte_bpe"]
    general = [f"The committee met on day {i} and agreed on{WORDS[i % 4]} as a name for the new hall." for i in range(200)]
    settings = FitSettings(steps=4, batch_size=4, block_size=32, seed=1, replay=0.5)

    def fitted(**kwargs):
        ext = _tiny_extension(base)
        summary = fit_extension(ext, _texts(), base_tokenizer=base, **kwargs)
        return summary, ext.model.get_input_embeddings().weight[ext.new_ids].detach().clone()

    summary, with_general = fitted(settings=settings, general=general)
    assert summary["replay"] == 0.5 and summary["general_blocks"] > 0 and summary["blocks"] > 0
    again = fitted(settings=settings, general=general)[1]
    assert torch.equal(with_general, again)  # deterministic with the general text too
    domain_only = fitted(settings=settings)
    assert domain_only[0]["replay"] == 0 and domain_only[0]["general_blocks"] == 0
    assert not torch.equal(with_general, domain_only[1])  # the general batches changed the fit
    # a zero share reads no general text and fits exactly as without it
    none = fitted(settings=FitSettings(steps=4, batch_size=4, block_size=32, seed=1, replay=0.0), general=general)
    assert none[0]["general_blocks"] == 0
    assert torch.equal(none[1], domain_only[1])
    with pytest.raises(VocabxError, match=r"replay .* must be in \[0, 1\), got 1"):
        FitSettings(replay=1)
    with pytest.raises(VocabxError, match="the general texts hold .* tokens, fewer than one block"):
        fit_extension(_tiny_extension(base), _texts(), base_tokenizer=base, settings=settings, general=["tiny"])


def test_on_step_is_called_after_every_step_with_its_loss(tiny_tokenizers):
    base = tiny_tokenizers["byte_bpe"]
    ext = _tiny_extension(base)
    pieces = [[base.convert_tokens_to_ids(p) for p in a["pieces"]] for a in ext.added]
    seen: list[tuple[int, float]] = []
    summary = fit_rows(
        ext.model, ext.tokenizer, base, ext.new_ids, pieces, [a["kind"] for a in ext.added], _texts(),
        FitSettings(steps=4, batch_size=2, block_size=32), on_step=lambda step, loss: seen.append((step, loss)),
    )
    assert [step for step, _ in seen] == [1, 2, 3, 4]
    assert summary["loss_start"] == pytest.approx(sum(loss for _, loss in seen) / 4, abs=1e-4)


def test_fit_errors_name_the_value_and_the_fix(tiny_tokenizers):
    base = tiny_tokenizers["byte_bpe"]
    ext = _tiny_extension(base)
    with pytest.raises(VocabxError, match="fewer than one block of 257"):
        fit_extension(ext, ["a short note"], base_tokenizer=base)
    with pytest.raises(VocabxError, match="fit steps must be a positive integer, got 0"):
        FitSettings(steps=0)
    with pytest.raises(VocabxError, match="fit lr must be a positive number"):
        FitSettings(lr=float("nan"))
    with pytest.raises(VocabxError, match="2 new ids, 1 piece lists and 2 kinds"):
        fit_rows(ext.model, ext.tokenizer, base, [1, 2], [[3]], ["word", "word"], _texts())
    assert fit_rows(ext.model, ext.tokenizer, base, [], [], [], _texts())["steps"] == 0
    with pytest.raises(VocabxError, match="needs at least one base piece"):
        fit_rows(ext.model, ext.tokenizer, base, [1], [[]], ["word"], _texts())
    no_eos = copy.deepcopy(ext.tokenizer)
    no_eos.eos_token = None
    with pytest.raises(VocabxError, match="no EOS token .* set tokenizer.eos_token"):
        fit_rows(ext.model, no_eos, base, ext.new_ids, [[1]] * len(ext.new_ids), ["word"] * len(ext.new_ids), _texts())


def test_extend_command_fits_rows_and_records_it(tmp_path, tiny_tokenizers, capsys):
    from vocabx.cli import main

    base = tiny_tokenizers["byte_bpe"]
    model_dir = tmp_path / "base"
    base.save_pretrained(model_dir)
    tinymodels.make_causal_lm(len(base)).save_pretrained(model_dir)
    terms = tmp_path / "terms.txt"
    terms.write_text("\n".join(w.strip() for w in WORDS) + "\n")
    corpus = tmp_path / "notes.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in _texts()))
    out = tmp_path / "ext"
    args = ["extend", "--model", str(model_dir), "--terms", str(terms), "-o", str(out), "--fit", str(corpus), "--fit-steps", "2", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["fit"]["steps"] == 2
    manifest = json.loads((out / "vocabx.json").read_text())
    assert manifest["init"]["fit"]["steps"] == 2 and manifest["init"]["strategy"]
    general = tmp_path / "general.jsonl"
    general.write_text("".join(json.dumps({"text": f"A walk in the park on day {i} with{WORDS[i % 4]} in mind."}) + "\n" for i in range(200)))
    replayed = tmp_path / "replayed"
    assert main(args[:6] + [str(replayed)] + args[7:] + ["--fit-general", str(general), "--fit-replay", "0.5"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["fit"]["replay"] == 0.5 and result["fit"]["general_blocks"] > 0
    assert main(["extend", "--model", str(model_dir), "--terms", str(terms), "-o", str(tmp_path / "z"), "--fit-general", str(general)]) == 2
    assert "give the domain texts with --fit too" in capsys.readouterr().err
    assert main(args[:6] + [str(tmp_path / "w")] + args[7:] + ["--fit-general", str(general), "--fit-replay", "1.5"]) == 2
    assert "must be in [0, 1), got 1.5" in capsys.readouterr().err
    assert main(["extend", "--model", str(model_dir), "--terms", str(terms), "-o", str(tmp_path / "x"), "--fit", str(corpus), "--tokenizer-only"]) == 2
    assert "--tokenizer-only writes no model" in capsys.readouterr().err
    assert main(["extend", "--model", str(model_dir), "--terms", str(terms), "-o", str(tmp_path / "y"), "--fit", str(corpus), "--fit-steps", "-1"]) == 2
    assert "fit steps must be a positive integer, got -1" in capsys.readouterr().err
    # (a fit option without --fit, or --fit-replay without --fit-general, was ignored without a word)
    assert main(["extend", "--model", str(model_dir), "--terms", str(terms), "-o", str(tmp_path / "v"), "--fit-steps", "5"]) == 2
    assert "--fit-steps set the row fit, which runs only with --fit CORPUS; give --fit, or drop it" in capsys.readouterr().err
    assert main(args[:6] + [str(tmp_path / "u")] + args[7:] + ["--fit-replay", "0.5"]) == 2
    assert "--fit-replay is the share of each --fit batch drawn from --fit-general; give --fit-general too" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in ("x", "y", "z", "w", "v", "u"))


def test_fitted_rows_score_held_out_text_better_than_the_mean_smollm2(smollm2_dir, _smollm2_tokenizer):
    """On the real model: a short fit lowers bits per byte of held-out domain text below the plain mean's."""
    from vocabx.analyze import SelectSettings, analyze
    from vocabx.extend import tokens_from_report
    from vocabx.metrics import bits_per_byte

    base = copy.deepcopy(_smollm2_tokenizer)
    docs = _docs("medical", 400)
    train, held = docs[40:], [t[:1000] for t in docs[:12]]
    report = analyze(train, base, holdout=None, settings=SelectSettings(max_new=256)).report
    ext = extend(str(smollm2_dir), tokens_from_report(report, 256), tokenizer=base, init="mean")
    mean_bpb = bits_per_byte(ext.model, ext.tokenizer, held, block_size=512, batch_size=4)["bpb"]
    fit_extension(ext, train, base_tokenizer=base, settings=FitSettings(steps=12, batch_size=2, block_size=128))
    fit_bpb = bits_per_byte(ext.model, ext.tokenizer, held, block_size=512, batch_size=4)["bpb"]
    assert math.isfinite(fit_bpb) and fit_bpb < mean_bpb


def test_fit_runs_on_the_best_device(tiny_tokenizers, monkeypatch):
    """With a GPU the fit moves a model on the CPU there (best_device says cuda) and puts it back after;
    here the same wiring is checked with best_device saying cpu (nothing to put back)."""
    import vocabx.models

    base = tiny_tokenizers["byte_bpe"]
    ext = _tiny_extension(base)
    moved = []
    monkeypatch.setattr(ext.model, "to", lambda *a, _to=ext.model.to: (moved.append(str(a[0])), _to(*a))[1])
    monkeypatch.setattr(vocabx.models, "best_device", lambda: "cpu")
    fit_extension(ext, _texts(), base_tokenizer=base, settings=FitSettings(steps=2, batch_size=2, block_size=32))
    assert moved == ["cpu"]
    moved.clear()
    fit_extension(ext, _texts(), base_tokenizer=base, settings=FitSettings(steps=1, batch_size=2, block_size=32), device="cpu")
    assert moved == ["cpu"]
