"""`vocabx check`'s figures on a hand-computed case, and each guarantee's violation caught on broken tokenizers."""

from __future__ import annotations

import copy
import json

import pytest
from tokenizers import Tokenizer

from vocabx.analyze import TokenSpace
from vocabx.check import check_corpus, check_tokens
from vocabx.errors import VocabxError
from vocabx.extend import NewToken, extend_tokenizer

HEP = NewToken("Ġhepatosplenomegaly", " hepatosplenomegaly", "word")
OF_THE = NewToken("ĠofĠthe", " of the", "phrase")
KEYS = {"docs", "base_tokens", "extended_tokens", "token_reduction", "docs_longer", "roundtrip_failures", "in_word_matches", "new_token_adoption", "unreachable"}


@pytest.fixture(scope="module")
def base(_tiny_tokenizers):
    return copy.deepcopy(_tiny_tokenizers["byte_bpe"])


@pytest.fixture(scope="module")
def good(base):
    ext, added, dropped = extend_tokenizer(base, [HEP, OF_THE])
    assert not dropped
    return ext, {"added": added}


def _spec(tok) -> dict:
    return json.loads(tok.backend_tokenizer.to_str())


def test_figures_on_a_hand_computed_case(base, good):
    ext, manifest = good
    hep = len(TokenSpace.of(base).pieces("Ġhepatosplenomegaly"))
    assert hep == 4
    texts = [" hepatosplenomegaly", " of the", " patient", "The patient has hepatosplenomegaly."]
    # base: 4 + 2 + 1 + (The, patient, has, 4 pieces, .) = 4 + 2 + 1 + 8; extended: 1 + 1 + 1 + 5
    result = check_corpus(base, ext, texts, manifest)
    assert KEYS <= set(result)
    assert result["docs"] == 4
    assert check_corpus(base, ext, [None, *texts, None], manifest) == result  # (None is no document)
    with pytest.raises(VocabxError, match=r"texts: document 1 is bytes .*, not text"):
        check_corpus(base, ext, [texts[0], b"bytes"], manifest)
    assert result["base_tokens"] == hep + 2 + 1 + (3 + hep + 1) == 15
    assert result["extended_tokens"] == 1 + 1 + 1 + 5 == 8
    assert result["token_reduction"] == round(1 - 8 / 15, 6)
    assert result["new_token_adoption"] == round(3 / 8, 6)
    assert (result["docs_longer"], result["roundtrip_failures"], result["in_word_matches"]) == (0, 0, 0)
    assert (result["added"], result["added_used"]) == (2, 2)
    assert result["ignore_merges_changes"] == 0
    assert result["ok"] is True and result["examples"] == {}
    # Without a manifest the added tokens are read off the vocabulary: the same figures.
    inferred = check_corpus(base, ext, texts)
    assert {k: inferred[k] for k in KEYS | {"added", "added_used", "ok"}} == {k: result[k] for k in KEYS | {"added", "added_used", "ok"}}


def test_unused_tokens_and_longer_words_are_counted_but_not_violations(base, good):
    ext, manifest = good
    result = check_corpus(base, ext, [" of theory", " hepatosplenomegalyx", ""], manifest)
    assert result["extended_tokens"] == result["base_tokens"] and result["token_reduction"] == 0.0
    assert (result["added_used"], result["new_token_adoption"], result["ok"]) == (0, 0.0, True)
    assert result["unreachable"] == 0  # (unused here, but each is produced on its own surface)


def test_special_tokens_without_a_manifest_are_reachable(base):
    ext = copy.deepcopy(base)
    ext.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    result = check_corpus(base, ext, [" the patient"])
    assert (result["added"], result["unreachable"], result["ok"]) == (2, 0, True)


def test_a_token_nothing_produces_is_unreachable_and_breaks_the_guarantees(base, good):
    ext, manifest = good
    spec = _spec(ext)
    new_id = max([*spec["model"]["vocab"].values(), *(t["id"] for t in spec["added_tokens"])]) + 1
    spec["model"]["vocab"]["ĠzzqĠxxv"] = new_id  # a hand-edited entry: no phrase pattern ever makes it
    edited = Tokenizer.from_str(json.dumps(spec))
    added = manifest["added"] + [{"id": new_id, "token": "ĠzzqĠxxv", "surface": " zzq xxv", "kind": "phrase"}]
    result = check_corpus(base, edited, [" zzq xxv and zzq xxv", " of the"], {"added": added})
    assert (result["docs_longer"], result["roundtrip_failures"], result["in_word_matches"]) == (0, 0, 0)
    assert result["unreachable"] == 1 and result["ok"] is False
    assert result["examples"]["unreachable"] == "' zzq xxv'"
    assert check_corpus(base, ext, [" zzq xxv"], manifest)["ok"] is True


def test_add_tokens_inside_words_makes_documents_longer(base):
    broken = copy.deepcopy(base)
    broken.add_tokens(["hepat"])  # the usual recipe: matched before the pre-tokenizer, anywhere
    texts = [" hepatosplenomegaly", " the patient"]
    result = check_corpus(base, broken, texts)
    assert result["docs_longer"] == 1 and result["token_reduction"] < 0
    assert result["examples"]["docs_longer"] == " hepatosplenomegaly"
    assert result["ok"] is False


def test_add_tokens_phrase_fires_inside_a_longer_word(base):
    broken = copy.deepcopy(base)
    broken.add_tokens([" of the"])
    result = check_corpus(base, broken, [" of theory", "one of the."])
    assert result["in_word_matches"] == 1 and result["docs_longer"] == 0
    assert "of theory" in result["examples"]["in_word_matches"]
    assert result["ok"] is False
    # The same tokenizer, described by a manifest as vocabx would write it.
    added = [{"id": broken.convert_tokens_to_ids(" of the"), "token": " of the", "surface": " of the", "kind": "phrase"}]
    assert check_corpus(base, broken, [" of theory"], {"added": added})["in_word_matches"] == 1
    failures = check_tokens(base, broken, added)
    assert [f["id"] for f in failures] == [added[0]["id"]] and "inside a longer word" in failures[0]["reason"]


def test_hand_edited_phrase_pattern_without_its_lookahead_is_caught(base, good):
    ext, manifest = good
    spec = _spec(ext)
    split = spec["pre_tokenizer"]["pretokenizers"][0]
    assert split["type"] == "Split" and "(?![\\p{L}\\p{N}])" in split["pattern"]["Regex"]
    split["pattern"]["Regex"] = split["pattern"]["Regex"].replace("(?![\\p{L}\\p{N}])", "")
    edited = Tokenizer.from_str(json.dumps(spec))
    result = check_corpus(base, edited, [" of theory", " of them all", "one of the."], manifest)
    assert result["in_word_matches"] == 2 and result["ok"] is False
    assert check_corpus(base, ext, [" of theory", " of them all", "one of the."], manifest)["ok"] is True


def test_hand_edited_decoder_breaks_the_round_trip(base, good):
    ext, manifest = good
    spec = _spec(ext)
    spec["decoder"] = None
    edited = Tokenizer.from_str(json.dumps(spec))
    texts = [" hepatosplenomegaly here", "The patient has hepatosplenomegaly."]
    result = check_corpus(base, edited, texts, manifest)
    assert result["roundtrip_failures"] == 2 and result["docs_longer"] == 0 and result["ok"] is False
    assert result["examples"]["roundtrip_failures"] == texts[0]


def test_check_tokens_passes_a_good_extension_and_drops_unreachable_tokens(base, good):
    ext, manifest = good
    assert check_tokens(base, ext, manifest["added"]) == []
    failures = check_tokens(base, ext, manifest["added"], ["The patient has hepatosplenomegaly."])
    assert [(f["token"], f["reason"]) for f in failures] == [("ĠofĠthe", "never produced on the check texts (unreachable)")]


def test_says_when_ignore_merges_alone_changes_the_base_tokenization(base):
    from transformers import PreTrainedTokenizerFast

    # A vocabulary entry its merges never build: turning on ignore_merges makes ' zorblax' one token.
    spec = _spec(base)
    spec["model"]["vocab"]["Ġzorblax"] = len(spec["model"]["vocab"])
    odd = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)))
    assert len(odd(" zorblax")["input_ids"]) > 1
    ext, added, _ = extend_tokenizer(odd, [HEP])
    result = check_corpus(odd, ext, [" zorblax", " the patient", "a zorblax b"], {"added": added})
    assert result["ignore_merges_changes"] == 2
    assert check_corpus(base, extend_tokenizer(base, [HEP])[0], [" zorblax"], {"added": added})["ignore_merges_changes"] == 0


def test_an_extension_of_another_base_of_the_same_size_is_refused(base, good):
    from vocabx.errors import VocabxError

    ext, manifest = good
    spec = _spec(base)
    vocab = spec["model"]["vocab"]
    first, second = sorted(vocab, key=vocab.get)[300:302]
    vocab[first], vocab[second] = vocab[second], vocab[first]  # (another base: the same size, other ids)
    other = Tokenizer.from_str(json.dumps(spec))
    assert other.get_vocab_size() == len(base)
    with pytest.raises(VocabxError, match=r"not made from this base: 2 of the base's \d+ tokens are missing or at other ids there"):
        check_corpus(other, ext, [" the patient"], manifest)
