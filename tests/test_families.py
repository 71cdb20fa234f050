"""Extending SentencePiece-style BPE, Unigram and WordPiece tokenizers (vocabx.families): the five guarantees.

Each family's tiny tokenizer (tests/tinymodels.py) is extended once per module with domain words it cuts
into several pieces, a subword and a phrase; the tests check the guarantees of DESIGN.md with the
semantics vocabx/families.py documents for each family.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Regex, Tokenizer, pre_tokenizers

import tinymodels
from vocabx.analyze import TokenSpace
from vocabx.check import check_tokens
from vocabx.errors import VocabxError
from vocabx.extend import NewToken, extend, extend_tokenizer
from vocabx.families import PHRASES_BYTE_LEVEL_ONLY, SENTINEL, _sp_split_pattern, base_pieces, extend_spec

FAMILIES = ("sp_bpe", "unigram", "wordpiece")
# Words of tinymodels.TRAINING_TEXT first, then domain words built from its pieces: the tiny tokenizers
# keep most training words whole, so the word candidates are the first three of these that they cut.
WORD_POOL = ["hepatosplenomegaly", "lymphadenopathy", "echocardiogram", "hepatomegaly", "splenomegaly", "cardiomegaly"]
# Where the subword candidates come from: the pairs of adjacent base pieces of these words.
SUBWORD_POOL = [
    "lymphadenitis", "hypertensive", "indemnification", "nephrectomy", "hepatitis", "cardiology", "confidentiality", "pathology"
]
PUNCTUATION = list(".,;:!?()[]{}'\"-–—«»„“/\\@#$%&*+=<>|~^`_…")
WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2028", "   \n "]


def _encode(tokenizer, text: str):
    return tokenizer.backend_tokenizer.encode(text, add_special_tokens=False)


def _roundtrips(tokenizer, text: str) -> bool:
    backend = tokenizer.backend_tokenizer
    return backend.decode(backend.encode(text, add_special_tokens=False).ids, skip_special_tokens=False) == text


def _fragmented(space: TokenSpace, words: list[str]) -> list[str]:
    return [w for w in words if space.marker + w not in space.vocab and len(space.pieces(space.marker + w)) >= 2]


def _pairs(space: TokenSpace, word: str) -> list[tuple[str, str]]:
    pieces = [p for p in space.pieces(space.marker + word) if p != space.marker]
    return list(zip(pieces, pieces[1:]))


def _subword_token(space: TokenSpace, a: str, b: str) -> NewToken:
    token = a + b[2:] if b.startswith("##") else a + b
    surface = token[2:] if token.startswith("##") else token.replace("▁", " ")
    return NewToken(token, surface, "subword", merge=[a, b], source="test subword")


def _subword(tokenizer, space: TokenSpace, family: str, words: list[str]) -> tuple[NewToken, str]:
    """A subword joining two adjacent base pieces of one of ``words``, and that word.

    For BPE the first pair of the first word: the appended merge then fires in that word once the base
    merges are done. WordPiece keeps only subwords greedy matching cannot cut longer; the first kept one
    fires in its word, as greedy matching reaches its position unchanged or meets it earlier.
    """
    if family != "wordpiece":
        a, b = _pairs(space, words[0])[0]
        return _subword_token(space, a, b), words[0]
    for word in words:
        for a, b in _pairs(space, word):
            candidate = _subword_token(space, a, b)
            if candidate.token not in space.vocab and extend_tokenizer(tokenizer, [candidate])[1]:
                return candidate, word
    raise AssertionError(f"no WordPiece subword of {words} can be added; widen SUBWORD_POOL")


def _candidates(tokenizer, family: str) -> SimpleNamespace:
    space = TokenSpace.of(tokenizer)
    words = _fragmented(space, WORD_POOL)[:3]
    subword, source = _subword(tokenizer, space, family, _fragmented(space, SUBWORD_POOL))
    new = [NewToken(space.marker + w, " " + w if space.marker else w, "word", source="test word") for w in words]
    new.append(subword)
    new.append(NewToken("▁of▁the" if space.marker else "of the", " of the", "phrase", source="test phrase"))
    pieces = sorted({p.removeprefix("##").replace("▁", "") for p in space.vocab if p.removeprefix("##").isalpha()})
    return SimpleNamespace(new=new, plain=words, subword_source=source, pieces=pieces)


def _build_case(family: str, tokenizer) -> SimpleNamespace:
    base = copy.deepcopy(tokenizer)
    chosen = _candidates(base, family)
    ext, added, dropped = extend_tokenizer(base, chosen.new)
    words = [a for a in added if a["kind"] == "word"]
    return SimpleNamespace(family=family, base=base, ext=ext, added=added, dropped=dropped, words=words, **vars(chosen))


@pytest.fixture(scope="module")
def cases(_tiny_tokenizers):
    """family -> its tiny tokenizer extended by the candidates, built once for the module."""
    built: dict[str, SimpleNamespace] = {}

    def get(family: str) -> SimpleNamespace:
        if family not in built:
            built[family] = _build_case(family, _tiny_tokenizers[family])
        return built[family]

    return get


@pytest.fixture(scope="module", params=FAMILIES)
def case(request, cases):
    return cases(request.param)


def _by_kind(case, kind: str) -> list[dict]:
    return [a for a in case.added if a["kind"] == kind]


# ---------------------------------------------------------------------------------------------------
# Real vocabulary entries


def test_new_tokens_are_entries_of_the_model_vocabulary(case):
    spec = json.loads(case.ext.backend_tokenizer.to_str())
    base_spec = json.loads(case.base.backend_tokenizer.to_str())
    assert spec["added_tokens"] == base_spec["added_tokens"]
    assert len(case.words) == 3
    first = max(case.base.backend_tokenizer.get_vocab(with_added_tokens=True).values()) + 1
    assert [a["id"] for a in case.added] == list(range(first, first + len(case.added)))
    model_vocab = case.ext.backend_tokenizer.get_vocab(with_added_tokens=False)
    for a in case.added:
        assert model_vocab[a.get("entry", a["token"])] == a["id"]
    assert len(case.ext) == len(case.base) + len(case.added)


def test_each_family_adds_the_kinds_it_supports(case):
    kinds = {a["kind"] for a in case.added}
    reasons = {d["kind"]: d["reason"] for d in case.dropped}
    if case.family == "sp_bpe":
        assert kinds == {"word", "subword", "phrase"} and not case.dropped
    elif case.family == "unigram":
        assert kinds == {"word"} and reasons["phrase"] == PHRASES_BYTE_LEVEL_ONLY
        assert reasons["subword"] == "subwords are BPE merges; a Unigram piece usable anywhere could make texts longer"
    else:
        assert kinds == {"word", "subword"} and reasons == {"phrase": PHRASES_BYTE_LEVEL_ONLY}


# ---------------------------------------------------------------------------------------------------
# Guarantees 1 and 2: lossless, never longer


def _texts(words: list[str], pieces: list[str]):
    """Texts of unicode, punctuation, casing, digits, runs of whitespace, and the words glued to letters
    and to base pieces (the contexts where a greedy or merged entry could cut a word differently)."""
    word = st.sampled_from(words)
    letters = st.text(st.characters(categories=["L"]), max_size=3)
    glue = st.one_of(letters, st.lists(st.sampled_from(pieces), max_size=3).map("".join))
    glued = st.tuples(glue, word, glue).map("".join)
    cased = word.flatmap(lambda w: st.sampled_from([w, w.upper(), w.capitalize(), " " + w, " " + w.title()]))
    part = st.one_of(
        glued,
        cased,
        st.sampled_from(PUNCTUATION),
        st.sampled_from(WHITESPACE),
        st.text(st.characters(categories=["Nd"]), min_size=1, max_size=4),
        st.text(max_size=6),
        st.sampled_from([SENTINEL, "\u4e00", "\u0301"]),
    )
    return st.lists(part, max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_never_longer_and_lossless_on_generated_texts(case, data):
    subwords = [a["surface"].strip() for a in _by_kind(case, "subword")]
    words = case.plain + subwords + [case.subword_source, "of the"]
    text = data.draw(_texts(words, case.pieces), label="text")
    base, ext = _encode(case.base, text), _encode(case.ext, text)
    assert len(ext.ids) <= len(base.ids)
    if _roundtrips(case.base, text):
        assert _roundtrips(case.ext, text)


def test_training_text_is_shorter_and_round_trips(case):
    for text in tinymodels.TRAINING_TEXT[:12] + [f"Examination revealed {' and '.join(case.plain)}."]:
        assert len(_encode(case.ext, text).ids) <= len(_encode(case.base, text).ids)
        assert _roundtrips(case.ext, text) == _roundtrips(case.base, text)


@pytest.mark.parametrize("score", [1000.0, 0.0])
def test_unigram_piece_score_cannot_lengthen_a_text(_tiny_tokenizers, score):
    """A piece's score only decides between paths of its own pre-token, which the marker makes unique."""
    base = copy.deepcopy(_tiny_tokenizers["unigram"])
    space = TokenSpace.of(base)
    words = _fragmented(space, WORD_POOL)[:3]
    new = [NewToken("▁" + w, " " + w, "word") for w in words]
    spec, added, _ = extend_spec(json.loads(space.backend.to_str()), new, space)
    for a in added:
        spec["model"]["vocab"][a["id"]][1] = score
    ext = Tokenizer.from_str(json.dumps(spec))
    for w in words:
        for text in [f"The {w} and {w}s", f"x{w}. {w}", f"{w}{w} {w.upper()} {w}", f"  {w}\n{w}"]:
            base_ids = space.backend.encode(text, add_special_tokens=False).ids
            assert len(ext.encode(text, add_special_tokens=False).ids) <= len(base_ids)
        assert added[words.index(w)]["id"] in ext.encode(f"a {w} b", add_special_tokens=False).ids


def test_unigram_piece_score_is_the_joint_score_of_the_pieces_it_replaces(cases):
    case = cases("unigram")
    spec = json.loads(case.ext.backend_tokenizer.to_str())
    scores = dict(map(tuple, spec["model"]["vocab"]))
    space = TokenSpace.of(case.base)
    lowest = min(score for _, score in json.loads(case.base.backend_tokenizer.to_str())["model"]["vocab"])
    for a in case.words:
        joint = sum(scores[p] for p in space.pieces(a["token"]))
        assert scores[a["entry"]] == pytest.approx(max(joint, lowest))
    # The lattice's <unk> penalty (lowest score - 10) stays as it was for every other text.
    assert min(scores.values()) == lowest


# ---------------------------------------------------------------------------------------------------
# Guarantee 3: no partial-word match; guarantee 4: reachable


def test_word_never_fires_inside_a_longer_word(case):
    for a in case.words:
        w = a["surface"].strip()
        for text in [f"x{w}", f"{w}x", f"{w}s", f"un{w}", f"{w}{w}", f"The {w}ed", f"{w}é", f" {w}ness and"]:
            assert a["id"] not in _encode(case.ext, text).ids, (a["token"], text)


def test_the_checker_finds_no_violation(case):
    """vocabx.check's stress set and glued probes, and reachability on texts: what extend() drops tokens on."""
    texts = [f"Examination revealed {w} and fever" for w in case.plain] + [f"the {case.subword_source} of the laws"]
    assert check_tokens(case.base, case.ext, case.added, texts) == []


def test_word_is_produced_on_its_own_surface_in_context(case):
    for a in case.words:
        w = a["surface"].strip()
        text = f"Examination revealed {w} and fever"
        encoding = _encode(case.ext, text)
        assert a["id"] in encoding.ids
        start, end = encoding.offsets[encoding.ids.index(a["id"])]
        assert text[start:end].strip() == w


def test_word_fires_on_whole_pre_tokens_of_its_family(case):
    """Before punctuation: BERT splits there, Metaspace (Unigram) does not, so the pre-token is 'w,'."""
    a = case.words[0]
    w = a["surface"].strip()
    fires = a["id"] in _encode(case.ext, f"with {w}, then").ids
    if case.family == "unigram":
        assert not fires
        assert a["id"] in _encode(case.ext, w).ids  # the text start is a space: Metaspace prepends '▁'
    elif case.family == "wordpiece":
        assert fires
        assert a["id"] in _encode(case.ext, f"({w.upper()})").ids  # the normalizer lowercases first


def test_metaspace_word_end_is_a_space_not_a_line_end(cases):
    """A newline stays inside the Unigram pre-token, so the word is not whole there: the base tokens stay."""
    case = cases("unigram")
    w = case.words[0]["surface"].strip()
    for text in [f"a {w}\nthe", f"{w}\n", f"the\n{w} x"]:
        assert _encode(case.ext, text).ids == _encode(case.base, text).ids


def test_subword_fires_inside_its_source_word(case):
    subwords = _by_kind(case, "subword")
    if case.family == "unigram":
        assert not subwords
        return
    (sub,) = subwords
    (candidate,) = [n for n in case.new if n.kind == "subword"]
    text = f"the {case.subword_source}"
    assert sub["id"] in _encode(case.ext, text).ids
    assert len(_encode(case.ext, text).ids) < len(_encode(case.base, text).ids)
    # A BPE subword is a merge, appended last; a WordPiece one is an entry of its own.
    assert sub.get("merge") == (candidate.merge if case.family == "sp_bpe" else None)
    if case.family == "sp_bpe":
        merges = json.loads(case.ext.backend_tokenizer.to_str())["model"]["merges"]
        assert merges[-1] in (candidate.merge, " ".join(candidate.merge))


@pytest.fixture(scope="module")
def wordpiece_subwords(_tiny_tokenizers):
    """The tiny WordPiece tokenizer extended by every subword of the pools' words: some kept, some dropped."""
    base = copy.deepcopy(_tiny_tokenizers["wordpiece"])
    space = TokenSpace.of(base)
    pairs = {pair for word in _fragmented(space, WORD_POOL + SUBWORD_POOL) for pair in _pairs(space, word)}
    new = [_subword_token(space, a, b) for a, b in sorted(pairs)]
    new = [n for n in new if n.token not in space.vocab]
    ext, added, dropped = extend_tokenizer(base, new)
    return SimpleNamespace(base=base, ext=ext, added=added, dropped=dropped, pieces=_candidates(base, "wordpiece").pieces)


def test_wordpiece_subwords_are_kept_only_where_greedy_matching_cannot_cut_longer(wordpiece_subwords):
    assert wordpiece_subwords.added and wordpiece_subwords.dropped
    assert all(d["reason"].startswith("greedy WordPiece") for d in wordpiece_subwords.dropped)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_kept_wordpiece_subwords_never_lengthen_a_word(wordpiece_subwords, data):
    """Words of base pieces around a kept entry: where greedy matching would differ if any could."""
    case = wordpiece_subwords
    body = data.draw(st.sampled_from([a["surface"] for a in case.added]), label="subword")
    around = st.lists(st.sampled_from(case.pieces), max_size=3).map("".join)
    word = data.draw(around, label="before") + body + data.draw(around, label="after")
    assert len(_encode(case.ext, word).ids) <= len(_encode(case.base, word).ids)
    if _roundtrips(case.base, word):
        assert _roundtrips(case.ext, word)


def test_sp_bpe_phrase_fires_when_no_letter_follows(cases):
    case = cases("sp_bpe")
    (phrase,) = _by_kind(case, "phrase")
    assert phrase["id"] in _encode(case.ext, "the laws of the State").ids
    assert phrase["id"] not in _encode(case.ext, "the laws of theory").ids
    assert phrase["id"] not in _encode(case.ext, "proof the").ids


def test_sp_bpe_cuts_only_where_no_base_token_crosses():
    # 'b.' and 'x▁' are inside base tokens: cutting there would change the base tokens around the word.
    pattern = _sp_split_pattern(["▁ab", "▁ab▁cd"], ["▁ab", "b.", "x▁", "▁c"])
    split = pre_tokenizers.Split(Regex(pattern), "isolated")

    def isolated(text: str) -> list[str]:
        return [piece for piece, _ in split.pre_tokenize_str(text)]

    assert isolated("y▁ab,") == ["y", "▁ab", ","]
    assert isolated("y▁ab▁cd") == ["y", "▁ab▁cd"]
    assert isolated("▁ab▁c") == ["▁ab", "▁c"]
    for text in ["▁ab.", "x▁ab", "▁abc", "▁ab2", "▁abé"]:
        assert isolated(text) == [text]


def _relayout(tokenizer, **parts):
    """The tokenizer with some tokenizer.json components replaced (another real-world layout)."""
    from transformers import PreTrainedTokenizerFast

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec.update(parts)
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), **tokenizer.special_tokens_map)


_METASPACE_DECODER = {
    "type": "Sequence",
    "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
        {"type": "ByteFallback"},
        {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0},
    ],
}
LAYOUTS = {
    # Llama-2 as recent transformers converts it: no normalizer, a Metaspace that does not split.
    "sp_bpe": dict(
        normalizer=None,
        pre_tokenizer={"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
        decoder=_METASPACE_DECODER,
    ),
    # XLM-R: whitespace split first, then Metaspace prepends '▁' to every word.
    "unigram": dict(
        pre_tokenizer={
            "type": "Sequence",
            "pretokenizers": [
                {"type": "WhitespaceSplit"},
                {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
            ],
        }
    ),
}


@pytest.mark.parametrize("family", sorted(LAYOUTS))
def test_other_real_world_layouts_keep_the_guarantees(tiny_tokenizers, family):
    base = _relayout(tiny_tokenizers[family], **LAYOUTS[family])
    space = TokenSpace.of(base)
    words = _fragmented(space, WORD_POOL)[:2]
    ext, added, dropped = extend_tokenizer(base, [NewToken("▁" + w, " " + w, "word") for w in words])
    assert len(added) == 2 and not dropped
    for w, a in zip(words, added):
        for text in [f"Examination revealed {w} and fever", w]:
            assert a["id"] in _encode(ext, text).ids
        # After WhitespaceSplit any whitespace ends a word; Metaspace alone only turns spaces into '▁'.
        assert (a["id"] in _encode(ext, f"revealed\t{w}\n").ids) == (family == "unigram")
        for text in [f"x{w}", f"{w}s", f"{w}{w}", f"The\n{w}ed"]:
            assert a["id"] not in _encode(ext, text).ids
        for text in tinymodels.TRAINING_TEXT[:12] + [f"  {w}\t{w}, {w}x {w}.", f"<s>{w} {w}</s>"]:
            assert len(_encode(ext, text).ids) <= len(_encode(base, text).ids)
            assert _roundtrips(ext, text) or not _roundtrips(base, text)


# ---------------------------------------------------------------------------------------------------
# Guarantee 5: portable


def test_saved_tokenizers_give_the_same_ids_without_vocabx(cases, tmp_path):
    """Every family's saved folder, loaded by plain transformers in one fresh process that cannot import vocabx."""
    jobs, expected = {}, {}
    for family in FAMILIES:
        case = cases(family)
        folder = tmp_path / family
        case.ext.save_pretrained(folder)
        texts = [f"Examination revealed {w} and {w}x." for w in case.plain]
        texts += [f"the {case.subword_source} of the", "", "  \n"]
        jobs[str(folder)] = texts
        expected[str(folder)] = [case.ext(t)["input_ids"] for t in texts]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs), encoding="utf-8")
    code = (
        "import json, sys\n"
        "sys.modules['vocabx'] = None  # any import of vocabx now fails\n"
        "from transformers import AutoTokenizer\n"
        "jobs = json.load(open('jobs.json', encoding='utf-8'))\n"
        "out = {f: [AutoTokenizer.from_pretrained(f)(t)['input_ids'] for t in texts] for f, texts in jobs.items()}\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


def test_a_model_specific_tokenizer_class_keeps_the_edits(tiny_tokenizers, tmp_path):
    from transformers import AutoTokenizer

    tiny_tokenizers["wordpiece"].save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "BertTokenizer"}), encoding="utf-8")
    bert = AutoTokenizer.from_pretrained(tmp_path)
    word = _fragmented(TokenSpace.of(bert), WORD_POOL)[0]
    ext, added, _ = extend_tokenizer(bert, [NewToken(word, word, "word")])
    assert added[0]["id"] in _encode(ext, f"revealed {word} and").ids


# ---------------------------------------------------------------------------------------------------
# Dropped candidates, re-extension, errors


@pytest.mark.parametrize("family", FAMILIES)
def test_known_and_unbuildable_candidates_are_dropped_with_reasons(tiny_tokenizers, family):
    tokenizer = tiny_tokenizers[family]
    space = TokenSpace.of(tokenizer)
    known = next(t for t in space.vocab if len(t) > 3 and t.startswith(space.marker) and t[len(space.marker) :].isalpha())
    fresh = space.marker + _fragmented(space, WORD_POOL)[0]
    prefix = "##" if family == "wordpiece" else ""
    new = [
        NewToken(known, known.replace("▁", " "), "word"),
        NewToken(fresh, fresh.replace("▁", " "), "word"),
        NewToken(fresh, fresh.replace("▁", " "), "word"),
        NewToken(fresh + "zq", "zq", "subword", merge=[fresh, prefix + "zq"]),
        NewToken(fresh + "q", "q", "idiom"),
    ]
    _, added, dropped = extend_tokenizer(tokenizer, new)
    assert [a["token"] for a in added] == [fresh]
    reasons = [d["reason"] for d in dropped]
    assert reasons[:2] == ["already in the vocabulary", "duplicate of an earlier candidate"]
    assert reasons[2].startswith("subwords are BPE merges" if family == "unigram" else "its merge needs")
    assert reasons[3] == "unknown kind 'idiom'"


@pytest.mark.parametrize(
    "family, token, surface, reason",
    [
        ("sp_bpe", "hepatomegaly", "hepatomegaly", "starts with '▁'"),
        ("sp_bpe", "▁hepato▁megaly", " hepato megaly", "use kind 'phrase'"),
        ("unigram", "hepatomegaly", "hepatomegaly", "'▁' followed by the word"),
        ("wordpiece", "##megaly", "megaly", "continuation prefix"),
        ("wordpiece", "hepato-megaly", "hepato-megaly", "punctuation"),
        ("wordpiece", "Hepatomegaly", "Hepatomegaly", "normalized form"),
    ],
)
def test_words_of_the_wrong_shape_are_dropped(tiny_tokenizers, family, token, surface, reason):
    _, added, dropped = extend_tokenizer(tiny_tokenizers[family], [NewToken(token, surface, "word")])
    assert not added and reason in dropped[0]["reason"]


@pytest.mark.parametrize("family", FAMILIES)
def test_extending_twice_keeps_the_earlier_words(tiny_tokenizers, family):
    base = tiny_tokenizers[family]
    space = TokenSpace.of(base)
    first, second = _fragmented(space, WORD_POOL)[:2]
    marker = space.marker
    once, added1, _ = extend_tokenizer(base, [NewToken(marker + first, " " + first, "word")])
    again = [NewToken(marker + second, " " + second, "word"), NewToken(marker + first, " " + first, "word")]
    twice, added2, _ = extend_tokenizer(once, again)
    assert added2[0]["id"] == added1[0]["id"] + 1 and len(added2) == 1
    ids = _encode(twice, f"the {first} and {second} x{first}").ids
    assert added1[0]["id"] in ids and added2[0]["id"] in ids and ids.count(added1[0]["id"]) == 1
    spec = json.loads(twice.backend_tokenizer.to_str())
    if family != "sp_bpe":
        # One marker step each, rebuilt from all marked entries rather than stacked.
        assert [n.get("content") for n in spec["normalizer"]["normalizers"]].count(SENTINEL) == 1
        assert [d.get("pattern") for d in spec["decoder"]["decoders"]].count({"String": SENTINEL}) == 1


def test_other_families_are_an_error():
    with pytest.raises(VocabxError, match="'wordlevel'"):
        extend_spec({"model": {"vocab": {}}}, [], SimpleNamespace(family="wordlevel"))


def test_base_pieces_are_in_token_space(case):
    """The pieces a new row is initialized from: no stray '▁', and '##' pieces as inside a word."""
    space = TokenSpace.of(case.base)
    for a in case.words:
        pieces = base_pieces(space, a["token"])
        assert pieces == list(space.pieces(a["token"]))
        assert "".join(p.removeprefix("##") for p in pieces) == a["token"]  # nothing more, nothing less
    if case.family == "wordpiece":
        pieces = list(space.pieces(case.subword_source))
        middle = "##" + "".join(p[2:] for p in pieces[1:])
        assert base_pieces(space, middle) == pieces[1:]


# ---------------------------------------------------------------------------------------------------
# The whole extension with a tiny model


def test_analyze_says_which_kinds_a_family_cannot_have(tiny_tokenizers):
    from vocabx.analyze import analyze

    texts = [f"{' '.join(tinymodels.TRAINING_TEXT)} (note {i})" for i in range(40)]
    notes = analyze(texts, tiny_tokenizers["unigram"], holdout=None).report["notes"]
    assert "subword candidates are BPE merges, and this tokenizer is unigram: none were looked for" in notes
    assert any(n.startswith("phrase candidates are proposed for byte-level BPE tokenizers, and this one is unigram") for n in notes)
    assert not any("candidates are" in n for n in analyze(texts, tiny_tokenizers["byte_bpe"], holdout=None).report["notes"])


def test_a_unigram_word_with_a_character_the_vocabulary_lacks_reads_it_as_unknown(tiny_tokenizers):
    from vocabx.extend import tokens_from_terms

    tokenizer = tiny_tokenizers["unigram"]
    new, _ = tokens_from_terms(["zorblax"], tokenizer)  # (z, x: not in the tiny Unigram vocabulary)
    extension = extend(tinymodels.make_causal_lm(len(tokenizer)), new, tokenizer=tokenizer)
    [added] = extension.added
    assert added["token"].endswith("zorblax") and tokenizer.unk_token in added["pieces"]


@pytest.mark.parametrize("family", FAMILIES)
def test_extend_resizes_a_tiny_model_for_each_family(tiny_tokenizers, family):
    """The whole extension: tokenizer, check on texts (as with an analyzed corpus), resized model, pieces."""
    tokenizer = tiny_tokenizers[family]
    chosen = _candidates(tokenizer, family)
    model = tinymodels.make_causal_lm(len(tokenizer))
    texts = [f"Examination revealed {w} and fever" for w in chosen.plain] + [f"the {chosen.subword_source} of the laws"]
    extension = extend(model, chosen.new, tokenizer=tokenizer, check_texts=texts)
    assert extension.new_ids == [a["id"] for a in extension.added]
    kinds = {"sp_bpe": {"word", "subword", "phrase"}, "unigram": {"word"}, "wordpiece": {"word", "subword"}}[family]
    assert {a["kind"] for a in extension.added} == kinds
    marker = TokenSpace.of(tokenizer).marker
    assert {a["token"] for a in extension.added if a["kind"] == "word"} == {marker + w for w in chosen.plain}
    assert extension.model.get_input_embeddings().weight.shape[0] >= len(extension.tokenizer)
    for a in extension.added:
        assert a["pieces"] and "[UNK]" not in a["pieces"] and "<unk>" not in a["pieces"]
        if a["kind"] == "word":
            assert a["id"] in extension.tokenizer(a["surface"], add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("pre_tokenizer", [{"type": "Whitespace"}, {"type": "WhitespaceSplit"}, None])
def test_wordpiece_words_need_a_pre_tokenizer_that_keeps_the_marker_with_the_word(tiny_tokenizers, pre_tokenizer):
    """With ``Whitespace`` the marker went with the next punctuation: the entry never fired and the marker
    became an extra [UNK] (a text one token longer); the words are dropped, saying why."""
    base = _relayout(tiny_tokenizers["wordpiece"], pre_tokenizer=pre_tokenizer)
    space = TokenSpace.of(base)
    words = _fragmented(space, WORD_POOL)[:2]
    ext, added, dropped = extend_tokenizer(base, [NewToken(w, " " + w, "word") for w in words])
    assert not added and [d["token"] for d in dropped] == words
    assert all("pre-tokenizer" in d["reason"] for d in dropped)
    for w in words:
        for text in [f"the-{w}\nthe'", f"({w}.", f"{w} {w}"]:
            assert len(_encode(ext, text).ids) <= len(_encode(base, text).ids)


def test_wordpiece_words_with_a_bert_pre_tokenizer_in_a_sequence_are_kept(tiny_tokenizers):
    pre = {"type": "Sequence", "pretokenizers": [{"type": "BertPreTokenizer"}, {"type": "Digits", "individual_digits": True}]}
    base = _relayout(tiny_tokenizers["wordpiece"], pre_tokenizer=pre)
    words = _fragmented(TokenSpace.of(base), WORD_POOL)[:2]
    ext, added, dropped = extend_tokenizer(base, [NewToken(w, " " + w, "word") for w in words])
    assert [a["token"] for a in added] == words
    assert added[0]["id"] in _encode(ext, f"revealed {words[0]}, 12").ids


@pytest.mark.parametrize("family", ["sp_bpe", "wordpiece"])
def test_added_tokens_after_the_vocabulary_keep_their_ids(tiny_tokenizers, family, tmp_path):
    """Added tokens right after the model vocabulary (Llama-3's and Qwen2's specials, ``add_tokens``) loaded
    with the ids of the new entries: the new word decoded as ``<|im_start|>``."""
    from transformers import AutoTokenizer

    base = copy.deepcopy(tiny_tokenizers[family])
    base.add_tokens(["<|im_start|>"], special_tokens=False)
    held = base.convert_tokens_to_ids("<|im_start|>")
    space = TokenSpace.of(base)
    words = _fragmented(space, WORD_POOL)[:2]
    ext, added, dropped = extend_tokenizer(base, [NewToken(space.marker + w, " " + w, "word") for w in words])
    assert len(added) == 2 and all(a["id"] > held for a in added)
    ext.save_pretrained(tmp_path)
    for tok in (ext, AutoTokenizer.from_pretrained(tmp_path)):
        assert tok.convert_tokens_to_ids("<|im_start|>") == held
        for w, a in zip(words, added):
            assert tok.decode([a["id"]]).strip() == w
            assert a["id"] in _encode(tok, f"<|im_start|> {w}").ids
    assert not check_tokens(base, ext, added)
