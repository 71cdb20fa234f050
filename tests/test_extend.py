"""The extender on byte-level BPE: the five guarantees, the add_tokens failure modes, the model, terms files, saving.

The guarantees are checked here independently of ``vocabx.check``: token counts, round trips and token
offsets are compared directly on hypothesis-generated texts. Extensions are built once per module, on the
tiny byte-level BPE tokenizer (with a tiny tied Llama) and, in slow tests, on the real smollm2-135m.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinymodels
from vocabx.analyze import SelectSettings, TokenSpace, analyze, count_corpus, select_candidates
from vocabx.errors import VocabxError
from vocabx.extend import (
    EXTENSION_SCHEMA,
    NewToken,
    extend,
    extend_tokenizer,
    load_extended_tokenizer,
    read_manifest,
    read_terms,
    save_extension,
    tokens_from_report,
    tokens_from_terms,
)

ROOT = Path(__file__).resolve().parents[1]
LEGAL = ROOT / "corpora" / "legal"

# Hand-picked tokens of every kind, on top of what the analyzer proposes.
HAND = [
    NewToken("Ġhepatosplenomegaly", " hepatosplenomegaly", "word"),
    NewToken("Ġzorblax", " zorblax", "word"),
    NewToken("ĠofĠthe", " of the", "phrase"),
    NewToken("ĠkidneyĠstone", " kidney stone", "phrase"),
    NewToken("ĠinĠaccordanceĠwith", " in accordance with", "phrase"),
]
# Terms whose phrases hold punctuation, added through tokens_from_terms.
TERMS = ["Inc.", "e.g.", "non-exclusive", "(a)", "U.S.", "x-ray"]
PROBES = [
    "The patient has hepatosplenomegaly, and hepatosplenomegalyx; HEPATOSPLENOMEGALY.",
    "one of the best, of theory, of them, of the.",
    "in accordance with Section 4; in accordance within",
    "kidney stones and a kidney stone",
    "zorblax zorblaxes xzorblax (zorblax) «zorblax»",
    "colitis gastritis hepatitis itis",
    "日本語 emoji 😀 café naïve   tabs\tand\nnewlines",
    "",
]

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _hand_picked(tok) -> list[NewToken]:
    """HAND and TERMS as tokens of this tokenizer, less those its vocabulary already has."""
    vocab = tok.get_vocab()
    return [n for n in HAND + tokens_from_terms(TERMS, tok)[0] if n.token not in vocab]


def _with_hand_picked(new: list[NewToken], tok) -> list[NewToken]:
    have = {n.token for n in new}
    return new + [n for n in _hand_picked(tok) if n.token not in have]


def _new_tokens(tok, texts: list[str]) -> list[NewToken]:
    space = TokenSpace.of(tok)
    chosen, _ = select_candidates(count_corpus(texts, space), space, SelectSettings())
    return _with_hand_picked(tokens_from_report({"candidates": [c.as_dict() for c in chosen]}), tok)


@pytest.fixture(scope="module")
def tiny(_tiny_tokenizers):
    """The tiny tokenizer extended by extend() with a tiny tied model: (base tokenizer, extension)."""
    base = copy.deepcopy(_tiny_tokenizers["byte_bpe"])
    # Each -itis word too rare to be a word candidate, the ending frequent enough to be a subword.
    itis = [f"Of, {a}; {b}." for a, b in [("gastritis", "colitis"), ("nephritis", "arthritis"), ("dermatitis", "hepatitis")]]
    texts = tinymodels.TRAINING_TEXT + itis * 2
    ext = extend(tinymodels.make_causal_lm(len(base)), _new_tokens(base, texts), tokenizer=base, init="mean")
    return base, ext


@pytest.fixture(scope="module")
def smol(_smollm2_tokenizer, smollm2_dir):
    """smollm2-135m's tokenizer extended by the legal corpus's top 400 candidates and the hand-picked ones."""
    from vocabx.corpus import read_corpus

    base = copy.deepcopy(_smollm2_tokenizer)
    result = analyze(read_corpus([str(LEGAL)]), base, holdout=None, settings=SelectSettings(max_new=400))
    new = _with_hand_picked(tokens_from_report(result.report), base)
    ext = extend(str(smollm2_dir), new, tokenizer=base, tokenizer_only=True)
    return base, ext


# ---------------------------------------------------------------------------------------------------
# The guarantees, on generated text


def _texts(added: list[dict]) -> st.SearchStrategy[str]:
    """Text made of the added tokens' surfaces, glued to letters, digits, punctuation, whitespace, unicode."""
    surfaces = sorted({a["surface"] for a in added})
    words = sorted({s.strip() for s in surfaces if s.strip()})
    fragment = st.one_of(
        st.sampled_from(surfaces),
        st.sampled_from(words),
        st.sampled_from(words).map(str.upper),
        st.sampled_from(words).map(str.capitalize),
        st.sampled_from(["x", "s", "es", "ing", "é", "ß", "İ", "日本", "😀", "naïve", "Ørsted"]),
        st.sampled_from([" ", "  ", "   ", "\n", "\n\n", "\t", " \n ", "\r\n", "\u00a0", "\u3000"]),
        st.sampled_from(list(".,;:!?'\"()[]-/«»…—$%&*")),
        st.sampled_from(["'s", "'t", "'re", "'ll"]),
        st.integers(0, 10**7).map(str),
        st.text(st.characters(codec="utf-8"), max_size=4),
    )
    return st.lists(fragment, max_size=14).map("".join)


# GPT-2's pre-tokenizer ends a word after these; what follows starts a new one ("it'sThis" -> "it", "'s", "This").
_CONTRACTION = re.compile(r"'(?:s|t|re|ve|m|ll|d)$")


def _assert_guarantees(base, ext, by_id: dict[int, dict], text: str) -> None:
    b = base.encode(text, add_special_tokens=False)
    e = ext.encode(text, add_special_tokens=False)
    # 2. never longer
    assert len(e.ids) <= len(b.ids), (text, e.tokens, b.tokens)
    # 1. lossless wherever the base is
    if base.decode(b.ids) == text:
        assert ext.decode(e.ids) == text, (text, e.tokens)
    # 3. a new word or phrase token never fires inside a longer word
    for i, (start, end) in zip(e.ids, e.offsets):
        a = by_id.get(i)
        if a is None or a["kind"] not in ("word", "phrase"):
            continue
        # (a letter after a token that ends in punctuation, as in ' --A', starts a word of its own)
        if a["surface"][-1].isalnum():
            assert not text[end : end + 1].isalpha(), (a["token"], text, e.tokens)
        if a["surface"][0].isalpha() and text[start - 1 : start].isalpha():
            assert _CONTRACTION.search(text[:start]), (a["token"], text, e.tokens)


def _assert_each_token_fires_on_its_surface(ext, added: list[dict]) -> None:
    for a in added:
        assert ext.encode(a["surface"], add_special_tokens=False).ids == [a["id"]], a


def _check_all(base_tok, ext_tok, added):
    from vocabx.stats import backend_of

    base, ext = backend_of(base_tok), backend_of(ext_tok)
    by_id = {a["id"]: a for a in added}
    kinds = {a["kind"] for a in added}
    assert kinds == {"word", "subword", "phrase"}
    # Nothing hand-picked was dropped on the way, so the property is not vacuous.
    assert {n.token for n in _hand_picked(base_tok)} <= {a["token"] for a in added}
    for text in PROBES:
        _assert_guarantees(base, ext, by_id, text)
    _assert_each_token_fires_on_its_surface(ext, added)

    @SETTINGS
    @given(_texts(added))
    def prop(text):
        _assert_guarantees(base, ext, by_id, text)

    prop()


def test_guarantees_on_generated_text_tiny(tiny):
    base, ext = tiny
    assert len(ext.added) > 20
    _check_all(base, ext.tokenizer, ext.added)


@pytest.mark.slow
def test_guarantees_on_generated_text_smollm2(smol):
    base, ext = smol
    assert len(ext.added) > 300
    _check_all(base, ext.tokenizer, ext.added)


def test_guarantee_checks_catch_the_add_tokens_recipe(tiny):
    # The property above fails on the usual recipe, so it can fail.
    from vocabx.stats import backend_of

    base, _ = tiny
    broken = copy.deepcopy(base)
    broken.add_tokens([" of the"])
    by_id = {broken.convert_tokens_to_ids(" of the"): {"token": " of the", "surface": " of the", "kind": "phrase"}}
    with pytest.raises(AssertionError):
        _assert_guarantees(backend_of(base), backend_of(broken), by_id, " of theory")


# ---------------------------------------------------------------------------------------------------
# The failure modes of add_tokens do not occur


def _tokens(tok, text: str) -> list[str]:
    return tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])


def _assert_no_add_tokens_failure_modes(base, ext) -> None:
    assert _tokens(ext, " hepatosplenomegaly") == ["Ġhepatosplenomegaly"]
    assert "Ġhepatosplenomegaly" in _tokens(ext, "The patient has hepatosplenomegaly.")
    # Inside a longer word: the base pieces, untouched.
    assert _tokens(ext, " hepatosplenomegalyx") == _tokens(base, " hepatosplenomegalyx")
    assert _tokens(ext, " of theory") == _tokens(base, " of theory")
    assert _tokens(ext, " of them") == _tokens(base, " of them")
    # Before punctuation, at the end, and right after a word (the space is the phrase's own).
    assert _tokens(ext, " of the.") == ["ĠofĠthe", "."]
    assert _tokens(ext, "Most of the") == _tokens(base, "Most") + ["ĠofĠthe"]
    assert _tokens(ext, "x of the, y") == _tokens(base, "x") + ["ĠofĠthe", ","] + _tokens(base, " y")
    assert _tokens(ext, "(one of the)") == _tokens(base, "(one") + ["ĠofĠthe", ")"]


def test_add_tokens_failure_modes_do_not_occur_tiny(tiny):
    base, ext = tiny
    _assert_no_add_tokens_failure_modes(base, ext.tokenizer)


@pytest.mark.slow
def test_add_tokens_failure_modes_do_not_occur_smollm2(smol):
    base, ext = smol
    _assert_no_add_tokens_failure_modes(base, ext.tokenizer)


def test_the_plain_recipe_shows_the_failure_modes(tiny):
    """What the tests above guard against, shown on the usual recipe."""
    from tokenizers import AddedToken

    base, _ = tiny
    recipe = copy.deepcopy(base)
    recipe.add_tokens(["hepatosplenomegaly", AddedToken(" of the", single_word=True)])
    assert _tokens(recipe, " hepatosplenomegaly") == ["Ġ", "hepatosplenomegaly"]
    assert "hepatosplenomegaly" in _tokens(recipe, " hepatosplenomegalyx")
    assert " of the" not in _tokens(recipe, "Most of the.")
    with pytest.raises(AssertionError):
        _assert_no_add_tokens_failure_modes(base, recipe)


@pytest.mark.parametrize(
    "token, text",
    [
        (NewToken("ĠofĠthe", " of the", "phrase"), "Met at one of the\u0301 cafes."),  # NFD: 'of thé'
        (NewToken("Ġcafe", " cafe", "word"), "Met at the cafe\u0301 today."),  # NFD: 'café'
        (NewToken("Notwithstanding", "Notwithstanding", "word"), "The Licensor'sNotwithstanding clause."),
        (NewToken("SignsĠandĠsymptoms", "Signs and symptoms", "phrase"), "The patient'sSigns and symptoms."),
    ],
    ids=["phrase-before-mark", "word-before-mark", "word-after-contraction", "phrase-after-contraction"],
)
def test_extend_and_check_agree_where_the_base_splits_a_glued_word(tiny, token, text):
    """Where the base pre-tokenizer itself starts a new word (before a combining mark, after 's), a new
    token may fire: extend() keeps it and `vocabx check` accepts it."""
    from vocabx.check import check_corpus

    base, _ = tiny
    ext = extend("unused", [token], tokenizer=base, tokenizer_only=True)
    assert [a["token"] for a in ext.added] == [token.token]
    assert token.token in _tokens(ext.tokenizer, text)
    assert check_corpus(base, ext.tokenizer, [text], ext.manifest)["in_word_matches"] == 0


def test_tokenizer_only_leaves_a_passed_model_alone(tiny_tokenizers, tiny_lm):
    base = tiny_tokenizers["byte_bpe"]
    rows = tiny_lm.get_input_embeddings().weight.shape[0]
    ext = extend(tiny_lm, HAND[:2], tokenizer=base, tokenizer_only=True)
    assert len(ext.added) == 2
    assert ext.model is None and tiny_lm.get_input_embeddings().weight.shape[0] == rows


# ---------------------------------------------------------------------------------------------------
# The model


def test_extend_grows_the_tied_model_and_initializes_rows_as_the_mean_of_pieces(tiny_tokenizers):
    base = tiny_tokenizers["byte_bpe"]
    model = tinymodels.make_causal_lm(len(base), tied=True)
    before = model.get_input_embeddings().weight.detach().clone()
    new = HAND + [
        NewToken("itis", "itis", "subword", merge=["it", "is"]),
        NewToken("ĠAgreement", " Agreement", "word"),  # already there
        NewToken("Ġbogus", " bogus", "subword", merge=["Ġb", "ogus"]),  # its merge does not join to it
        NewToken("Ġgorp", "gorp", "word"),  # a space token claiming a spaceless surface: never fires there
    ]
    ext = extend(model, new, tokenizer=base, init="mean")
    n = len(base)
    assert ext.new_ids == list(range(n, n + len(ext.added)))
    assert {a["token"] for a in ext.added} == {t.token for t in HAND} | {"itis"}
    w = model.get_input_embeddings().weight
    assert w.shape[0] == n + len(ext.added) == len(ext.tokenizer)
    assert model.get_output_embeddings().weight is w  # tying kept
    assert torch.equal(w[:n], before)
    for a in ext.added:
        ids = base(a["surface"], add_special_tokens=False)["input_ids"]
        assert a["pieces"] == base.convert_ids_to_tokens(ids)
        assert torch.allclose(w[a["id"]], before[ids].mean(dim=0), atol=1e-6), a["token"]
    manifest = ext.manifest
    assert manifest["schema"] == EXTENSION_SCHEMA == "vocabx.extension/1"
    assert [a["id"] for a in manifest["added"]] == ext.new_ids
    assert manifest["init"]["strategy"] == "mean.v1" and manifest["init"]["tied"] is True
    assert manifest["vocab_size"] == manifest["embedding_rows"] == len(ext.tokenizer)
    assert manifest["base_model"]["vocab_size"] == n
    reasons = {d["token"]: d["reason"] for d in manifest["dropped"]}
    assert set(reasons) == {"ĠAgreement", "Ġbogus", "Ġgorp"}
    assert reasons["ĠAgreement"] == "already in the vocabulary"
    assert "merge" in reasons["Ġbogus"]
    assert "unreachable" in reasons["Ġgorp"]
    assert all(d["reason"] for d in manifest["dropped"])


def test_extend_initializes_an_untied_model_per_matrix(tiny_tokenizers):
    base = tiny_tokenizers["byte_bpe"]
    model = tinymodels.make_causal_lm(len(base), tied=False)
    w_in0 = model.get_input_embeddings().weight.detach().clone()
    w_out0 = model.get_output_embeddings().weight.detach().clone()
    ext = extend(model, HAND[:3], tokenizer=base, init="mean")
    w_in, w_out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert w_in is not w_out and w_in.shape == w_out.shape == (len(base) + 3, w_in0.shape[1])
    for a in ext.added:
        ids = base(a["surface"], add_special_tokens=False)["input_ids"]
        assert torch.allclose(w_in[a["id"]], w_in0[ids].mean(dim=0), atol=1e-6)
        assert torch.allclose(w_out[a["id"]], w_out0[ids].mean(dim=0), atol=1e-6)
    assert ext.manifest["init"]["tied"] is False


def test_extend_drops_tokens_no_check_text_produces(tiny_tokenizers):
    base = tiny_tokenizers["byte_bpe"]
    ext = extend("unused", HAND[:3], tokenizer=base, tokenizer_only=True, check_texts=["The patient has hepatosplenomegaly."])
    assert [a["token"] for a in ext.added] == ["Ġhepatosplenomegaly"]
    assert {d["token"]: d["reason"] for d in ext.dropped} == {
        "Ġzorblax": "never produced on the check texts (unreachable)",
        "ĠofĠthe": "never produced on the check texts (unreachable)",
    }
    assert ext.model is None


def test_every_rebuilt_tokenizer_is_checked_again(monkeypatch, tiny_tokenizers):
    import vocabx.check

    seen: list[list[str]] = []

    def fails_the_last_token_three_times(base, ext, added, texts=None):
        seen.append([a["token"] for a in added])
        return [{"id": added[-1]["id"], "token": added[-1]["token"], "reason": "made up"}] if len(seen) <= 3 else []

    monkeypatch.setattr(vocabx.check, "check_tokens", fails_the_last_token_three_times)
    ext = extend("unused", HAND, tokenizer=tiny_tokenizers["byte_bpe"], tokenizer_only=True)
    assert len(seen) == 4 and seen[-1] == [t.token for t in HAND[:2]]  # (the third rebuild was checked too)
    assert [a["token"] for a in ext.added] == [t.token for t in HAND[:2]]
    assert [d["token"] for d in ext.dropped] == [t.token for t in HAND[4:1:-1]]

    def never_passes(base, ext, added, texts=None):
        return [{"id": -1, "token": "Ġstuck", "reason": "made up"}]

    monkeypatch.setattr(vocabx.check, "check_tokens", never_passes)
    with pytest.raises(VocabxError, match=r"still fail the guarantees after 5 rounds .*'Ġstuck': made up\); pass fewer tokens"):
        extend("unused", HAND, tokenizer=tiny_tokenizers["byte_bpe"], tokenizer_only=True)


# ---------------------------------------------------------------------------------------------------
# Terms files


def _terms_file(tmp_path: Path) -> Path:
    path = tmp_path / "terms.txt"
    path.write_bytes(
        b"hepatosplenomegaly\n"  # 1
        b"\n"  # 2 blank
        b"   \n"  # 3 blank
        b"kidney stone\n"  # 4
        b"hepatosplenomegaly\n"  # 5 duplicate
        b"Agreement\n"  # 6 already in the vocabulary
        b"bad\tterm\n"  # 7 tab
        b"ctl\x07char\n"  # 8 control character
        + b"x" * 1000 + b"\n"  # 9 too long
        b"bad\xff\xfebytes\n"  # 10 invalid UTF-8
        b"zorblax\n"  # 11
        b"# a comment\n"  # 12
        b"double  space\n"  # 13
        b"non-exclusive\n"  # 14 a phrase: the pre-tokenizer splits it
    )
    return path


def test_terms_file_bad_lines_are_dropped_with_reasons_and_the_rest_added(tmp_path, tiny_tokenizers):
    base = tiny_tokenizers["byte_bpe"]
    terms, dropped = read_terms(_terms_file(tmp_path))
    assert terms == ["hepatosplenomegaly", "kidney stone", "Agreement", "zorblax", "non-exclusive"]
    reasons = [d["reason"] for d in dropped]
    assert reasons == [
        "duplicate (terms line 5)",
        "contains control characters (terms line 7)",
        "contains control characters (terms line 8)",
        "longer than 64 characters (terms line 9)",
        "not valid UTF-8 (terms line 10)",
        "contains whitespace other than single spaces (terms line 13)",
    ]
    assert all(len(d["token"]) <= 80 for d in dropped)
    new, more = tokens_from_terms(terms, base)
    assert more == [{"token": "ĠAgreement", "surface": " Agreement", "kind": "word", "reason": "already in the vocabulary"}]
    assert [(n.token, n.kind) for n in new] == [
        ("Ġhepatosplenomegaly", "word"),
        ("ĠkidneyĠstone", "phrase"),
        ("Ġzorblax", "word"),
        ("Ġnon-exclusive", "phrase"),
    ]
    ext = extend("unused", new, tokenizer=base, tokenizer_only=True)
    assert [a["token"] for a in ext.added] == [n.token for n in new]
    assert _tokens(ext.tokenizer, "a non-exclusive license") == _tokens(base, "a") + ["Ġnon-exclusive"] + _tokens(base, " license")


def test_a_damaged_tokenizer_folder_is_a_one_line_error_naming_it(tiny_tokenizers, tmp_path):
    from vocabx.extend import load_extended_tokenizer
    from vocabx.models import load_tokenizer

    folder = tmp_path / "ext"
    tiny_tokenizers["byte_bpe"].save_pretrained(folder)
    (folder / "tokenizer.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(VocabxError, match=r"cannot load the tokenizer in '.*ext' \(\w+: .*\); its files are damaged: write the folder again with vocabx extend") as err:
        load_extended_tokenizer(folder)
    assert "\n" not in str(err.value)
    with pytest.raises(VocabxError, match=r"cannot load the tokenizer from '.*ext': \w+: .*; check or write again the folder's files"):
        load_tokenizer(folder)


def test_terms_from_python_are_cleaned_and_checked_as_a_terms_file_s_lines(tiny_tokenizers):
    # (a stray space from a spreadsheet made 'Ġhepatosplenomegaly' + 'Ġ', a phrase that fires only before
    # whitespace, and the word itself was never added)
    base = tiny_tokenizers["byte_bpe"]
    new, dropped = tokens_from_terms(["hepatosplenomegaly ", " kidney stone", "line\nbreak", "a\tb", "x" * 65, "  ", None], base)
    assert [(n.token, n.kind) for n in new] == [("Ġhepatosplenomegaly", "word"), ("ĠkidneyĠstone", "phrase")]
    assert [d["reason"] for d in dropped] == [
        "contains control characters", "contains control characters", "longer than 64 characters", "empty", "not text (NoneType)",
    ]
    with pytest.raises(VocabxError, match=r"terms is one str \('hepatosplenomegaly'\), not a list of terms; pass \[term\]"):
        tokens_from_terms("hepatosplenomegaly", base)


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_a_phrase_ending_in_a_symbol_never_cuts_a_run_of_symbols_or_marks(tiny_tokenizers):
    base = tiny_tokenizers["byte_bpe"]
    new, _ = tokens_from_terms(["etc.", "Inc.", "C++"], base)
    ext, added, dropped = extend_tokenizer(base, new)
    assert not dropped and {a["token"] for a in added} == {"Ġetc.", "ĠInc.", "ĠC++"}
    ids = {a["token"]: a["id"] for a in added}
    # followed by more symbols or a combining mark, the split pattern glues them to the phrase's last
    # symbols: the phrase must not fire there ('etc...)' was one token longer than the base's)
    for text in ["and so on etc...)", "Acme Inc...,", "a C++\u0301 b", "Acme Inc.\u0301"]:
        assert len(_encode(ext, text)) <= len(_encode(base, text)) and not set(_encode(ext, text)) & set(ids.values())
    for text, token in [("Acme Inc. is", "ĠInc."), ("see etc.\n", "Ġetc."), ("in C++", "ĠC++")]:
        assert ids[token] in _encode(ext, text) and len(_encode(ext, text)) < len(_encode(base, text))


def test_extending_an_extension_keeps_its_longer_phrases_first(tiny_tokenizers):
    base = tiny_tokenizers["byte_bpe"]
    first, added_first, _ = extend_tokenizer(base, tokens_from_terms(["of the best", "in the"], base)[0])
    second, added_second, dropped = extend_tokenizer(first, tokens_from_terms(["of the", "C++"], first)[0])
    assert not dropped
    ids = {a["token"]: a["id"] for a in added_first + added_second}
    assert _encode(second, "one of the best") == _encode(first, "one of the best") == _encode(base, "one") + [ids["ĠofĠtheĠbest"]]
    assert ids["ĠofĠthe"] in _encode(second, "one of the worst") and ids["ĠinĠthe"] in _encode(second, "all in the end")
    for text in ["one of the best of the rest in the C++ code", "of the bestseller", "in C++."]:
        assert len(_encode(second, text)) <= len(_encode(first, text)) and second.decode(_encode(second, text)) == text
    # one block of phrases in front of the split pattern, not two
    split = next(p for p in json.loads(second.backend_tokenizer.to_str())["pre_tokenizer"]["pretokenizers"] if p["type"] == "Split")
    from vocabx.extend import GPT2_PATTERN, _phrase_block

    phrases, rest = _phrase_block(split["pattern"]["Regex"])
    assert sorted(phrases) == [" C++", " in the", " of the", " of the best"] and rest == GPT2_PATTERN


def test_a_term_starting_with_a_digit_keeps_its_space_where_the_pattern_splits_digits_off(tiny_tokenizers):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    # Llama-3's layout: digits in runs of up to three without the space before them, so ' 2' is 'Ġ' + '2'
    spec = json.loads(tiny_tokenizers["byte_bpe"].backend_tokenizer.to_str())
    pattern = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
    ]}
    base = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), **tiny_tokenizers["byte_bpe"].special_tokens_map)
    new, _ = tokens_from_terms(["2 diabetes"], base)
    assert [(n.token, n.surface, n.kind) for n in new] == [("Ġ2Ġdiabetes", " 2 diabetes", "phrase")]
    ext, added, dropped = extend_tokenizer(base, new)
    assert not dropped and added[0]["id"] in _encode(ext, "type 2 diabetes")


def test_terms_with_line_separator_characters_are_dropped_not_split(tmp_path):
    path = tmp_path / "terms.txt"
    path.write_bytes(b"form\x0cfeed\nzorblax\nbad\tterm\n")
    terms, dropped = read_terms(path)
    assert terms == ["zorblax"]
    assert [d["reason"] for d in dropped] == [
        "contains control characters (terms line 1)",
        "contains control characters (terms line 3)",
    ]


def test_extend_command_with_a_terms_file(tmp_path, tiny_tokenizers, tiny_lm, capsys):
    from vocabx.cli import main

    model_dir = tmp_path / "tiny-model"
    tiny_tokenizers["byte_bpe"].save_pretrained(model_dir)
    tiny_lm.save_pretrained(model_dir)
    out = tmp_path / "ext"
    code = main(["extend", "--model", str(model_dir), "--terms", str(_terms_file(tmp_path)), "-o", str(out), "--json", "--quiet"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["added"] == 4 and result["dropped"] == 7
    manifest = read_manifest(out)
    assert [a["surface"] for a in manifest["added"]] == [" hepatosplenomegaly", " kidney stone", " zorblax", " non-exclusive"]
    assert len(manifest["dropped"]) == 7 and all(d["reason"] for d in manifest["dropped"])
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocabx.json", "added.tsv"} <= {p.name for p in out.iterdir()}


def test_the_manifest_of_a_folder_that_does_not_exist_says_so(tmp_path):
    # (vocabx check --extended with a mistyped folder said the folder "has no vocabx.json")
    with pytest.raises(VocabxError) as info:
        read_manifest(tmp_path / "ext")
    assert str(info.value) == f"{str(tmp_path / 'ext')!r} does not exist; pass a folder written by vocabx extend"


def test_extend_with_no_term_to_add_is_an_error_not_a_copy_of_the_base(tmp_path, tiny_tokenizers, tiny_lm, capsys):
    # An empty terms file (or one whose terms the base already has) wrote the base model again, exit 0.
    from vocabx.cli import main

    model_dir = tmp_path / "tiny-model"
    tiny_tokenizers["byte_bpe"].save_pretrained(model_dir)
    tiny_lm.save_pretrained(model_dir)
    empty, known = tmp_path / "empty.txt", tmp_path / "known.txt"
    empty.write_text("# terms for the legal corpus\n\n")
    known.write_text("Agreement\nAgreement\n")
    capsys.readouterr()
    assert main(["extend", "--model", str(model_dir), "--terms", str(empty), "-o", str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"vocabx: error: terms file {empty} holds no terms; write one term per line, as it appears in text "
        "(blank lines and lines starting with '#' are skipped)"
    )
    assert main(["extend", "--model", str(model_dir), "--terms", str(known), "-o", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"vocabx: error: terms file {known}: none of its 2 terms can be added (1 duplicate; 1 already in the "
        f"vocabulary); give terms that {model_dir} does not already hold as one token"
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------------------------------
# Saving: portable, refuses to clobber, all or nothing


PORTABLE = r"""
import json, sys

class NoVocabx:
    # -I alone does not hide an editable install (its finder sits in site-packages): block it outright.
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "vocabx" or name.startswith("vocabx."):
            raise ModuleNotFoundError("No module named 'vocabx'", name=name)
        return None

sys.meta_path.insert(0, NoVocabx)
try:
    import vocabx
    importable = True
except ImportError:
    importable = False

from transformers import AutoTokenizer

folder, texts_file, with_model = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
texts = json.load(open(texts_file, encoding="utf-8"))
tok = AutoTokenizer.from_pretrained(folder)
out = {
    "vocabx_importable": importable,
    "vocabx_loaded": any(m == "vocabx" or m.startswith("vocabx.") for m in sys.modules),
    "len": len(tok),
    "ids": [tok(t, add_special_tokens=False)["input_ids"] for t in texts],
}
if with_model:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    w = model.get_input_embeddings().weight
    out["rows"] = w.shape[0]
    out["tied"] = model.get_output_embeddings().weight.data_ptr() == w.data_ptr()
    out["new_rows"] = w[-int(sys.argv[4]):].tolist()
print(json.dumps(out))
"""


def _load_elsewhere(folder: Path, texts: list[str], model_rows: int = 0) -> dict:
    texts_file = folder.parent / f"{folder.name}-texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    args = [sys.executable, "-I", "-c", PORTABLE, str(folder), str(texts_file), "1" if model_rows else "0", str(model_rows)]
    result = subprocess.run(args, capture_output=True, text=True, cwd=folder.parent, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _portable_texts(added: list[dict]) -> list[str]:
    return PROBES + [a["surface"] for a in added] + [f"x{a['surface']}y" for a in added[:50]]


def test_saved_folder_loads_without_vocabx_tiny_model(tmp_path, tiny):
    base, ext = tiny
    folder = save_extension(ext, tmp_path / "ext")
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocabx.json", "added.tsv"} <= {
        p.name for p in folder.iterdir()
    }
    texts = _portable_texts(ext.added)
    n_new = len(ext.added)
    out = _load_elsewhere(folder, texts, model_rows=n_new)
    assert out["vocabx_importable"] is False and out["vocabx_loaded"] is False
    assert out["len"] == len(ext.tokenizer)
    assert out["ids"] == [ext.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    w = ext.model.get_input_embeddings().weight
    assert out["rows"] == w.shape[0] and out["tied"] is True
    assert torch.allclose(torch.tensor(out["new_rows"]), w[-n_new:].detach(), atol=1e-6)
    # And in this process, through vocabx's own loader.
    again = load_extended_tokenizer(folder)
    assert [again(t, add_special_tokens=False)["input_ids"] for t in texts] == out["ids"]
    manifest = read_manifest(folder)
    assert manifest["schema"] == EXTENSION_SCHEMA and [a["id"] for a in manifest["added"]] == ext.new_ids
    tsv = (folder / "added.tsv").read_text(encoding="utf-8").splitlines()
    assert tsv[0].split("\t")[:4] == ["status", "id", "kind", "token"] and len(tsv) == 1 + n_new + len(ext.dropped)


@pytest.mark.slow
def test_saved_folder_loads_without_vocabx_smollm2_tokenizer_only(tmp_path, smol):
    base, ext = smol
    folder = save_extension(ext, tmp_path / "ext")
    names = {p.name for p in folder.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "vocabx.json", "added.tsv"} <= names
    assert not any(n.endswith(".safetensors") for n in names)
    texts = _portable_texts(ext.added)
    out = _load_elsewhere(folder, texts)
    assert out["vocabx_importable"] is False
    assert out["len"] == len(ext.tokenizer) == len(base) + len(ext.added)
    assert out["ids"] == [ext.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def test_save_refuses_a_non_empty_folder_without_overwrite(tmp_path, tiny):
    _, ext = tiny
    target = tmp_path / "ext"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(VocabxError, match="--overwrite"):
        save_extension(ext, target)
    # --overwrite only replaces an earlier extension, never an unrelated folder.
    with pytest.raises(VocabxError, match="vocabx.json"):
        save_extension(ext, target, overwrite=True)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    first = save_extension(ext, tmp_path / "ext2")
    (first / "stale.txt").write_text("old")
    save_extension(ext, first, overwrite=True)
    assert not (first / "stale.txt").exists() and (first / "vocabx.json").is_file()


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_an_error_mid_save_leaves_no_folder(tmp_path, tiny, monkeypatch, error):
    _, ext = tiny
    ext = copy.copy(ext)
    ext.tokenizer = copy.deepcopy(ext.tokenizer)

    def boom(*args, **kwargs):
        raise error

    monkeypatch.setattr(ext.tokenizer, "save_pretrained", boom)
    target = tmp_path / "out" / "ext"
    with pytest.raises(type(error)):
        save_extension(ext, target)
    assert not target.exists()
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_an_error_mid_overwrite_keeps_the_previous_folder(tmp_path, tiny, monkeypatch):
    _, ext = tiny
    target = save_extension(ext, tmp_path / "ext")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    broken = copy.copy(ext)
    broken.tokenizer = copy.deepcopy(ext.tokenizer)
    monkeypatch.setattr(broken.tokenizer, "save_pretrained", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_extension(broken, target, overwrite=True)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["ext"]


def test_special_tokens_after_the_vocabulary_keep_their_ids_once_saved(tmp_path, tiny_tokenizers):
    # (Llama-3 and Qwen2 put their specials right after the base vocabulary; tokenizers gives an added
    # token the model's id for its string, else the vocabulary's size, so without their ids in the model
    # vocabulary they would come back with the new tokens' ids)
    from transformers import AutoTokenizer

    tok = copy.deepcopy(tiny_tokenizers["byte_bpe"])
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    specials = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    words = [" hepatosplenomegaly", " lymphadenopathy", " echocardiogram"]
    new = [NewToken("Ġ" + w[1:], w, "word") for w in words if len(tok.tokenize(w)) > 1]
    ext, added, _ = extend_tokenizer(tok, new)
    ext.save_pretrained(tmp_path / "tok")
    back = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert back.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"]) == specials
    assert [back.convert_tokens_to_ids(a["token"]) for a in added] == [a["id"] for a in added]
    assert not set(specials) & {a["id"] for a in added}
    text = " hepatosplenomegaly <|im_start|> and"
    assert back(text)["input_ids"] == ext(text)["input_ids"] and specials[0] in back(text)["input_ids"]
