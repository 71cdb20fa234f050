"""The analyzer: exact savings on hand-computed corpora, candidate rules, holdout split, counts, bad input.

The exactness tests compute each expected saving in the test from ``space.pieces`` of the words, and then
check the projection against what the extended tokenizer of ``vocabx.extend`` really does on the same
texts. They run on the tiny byte-level BPE tokenizer, whose small vocabulary cuts most words into
several pieces.
"""

from __future__ import annotations

import copy
import importlib
import json
import random
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinymodels
from vocabx.analyze import (
    MIN_DOCS,
    MIN_WORDS,
    Counts,
    SelectSettings,
    TokenSpace,
    analyze,
    cohesion,
    count_corpus,
    curve_points,
    held_out_groups,
    knee,
    project,
    select_candidates,
    specificity,
    split_by_groups,
    split_holdout,
)
from vocabx.errors import VocabxError
from vocabx.extend import extend_tokenizer, tokens_from_report

ROOT = Path(__file__).resolve().parents[1]
LEGAL = ROOT / "corpora" / "legal"


@pytest.fixture(scope="module")
def tok(_tiny_tokenizers):
    return copy.deepcopy(_tiny_tokenizers["byte_bpe"])


@pytest.fixture(scope="module")
def space(tok):
    return TokenSpace.of(tok)


# Each -itis word too rare to be a word candidate, the -itis ending frequent; a phrase; a loose word.
MIXED = [
    f"Of, {a}; {b}. Kidney, kidney; the kidney stone."
    for a, b in [("gastritis", "colitis"), ("nephritis", "arthritis"), ("dermatitis", "hepatitis")] * 2
]


def _select(texts, space, **settings):
    counts = count_corpus(texts, space, max_phrase_words=settings.get("max_phrase_words", 3))
    settings.setdefault("min_docs", 1)
    chosen, _ = select_candidates(counts, space, SelectSettings(**settings))
    return chosen


def _real_saving(tok, chosen, texts) -> int:
    """Tokens the extended tokenizer built from ``chosen`` saves on ``texts``, counted by encoding them."""
    ext, added, dropped = extend_tokenizer(tok, tokens_from_report({"candidates": [c.as_dict() for c in chosen]}))
    assert dropped == [] and len(added) == len(chosen)
    base = sum(len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"])
    extended = sum(len(ids) for ids in ext(texts, add_special_tokens=False)["input_ids"])
    return base - extended


def _saved(chosen) -> dict[str, int]:
    return {c.token: c.tokens_saved for c in chosen}


def _pieces(space, token: str) -> int:
    return len(space.pieces(token))


# ---------------------------------------------------------------------------------------------------
# Exact savings, by hand


def test_word_saves_count_times_pieces_minus_one(tok, space):
    texts = ["Of, zorblax; kidney, zorblax."] * 4 + ["Of, kidney."] * 3
    chosen = _select(texts, space, kinds=("word",))
    expected = {
        "Ġzorblax": 8 * (_pieces(space, "Ġzorblax") - 1),
        "Ġkidney": 7 * (_pieces(space, "Ġkidney") - 1),
        "Of": 7 * (_pieces(space, "Of") - 1),
    }
    assert expected == {"Ġzorblax": 40, "Ġkidney": 42, "Of": 7}  # the tiny tokenizer's cuts, for the reader
    assert [(c.token, c.tokens_saved) for c in chosen] == sorted(expected.items(), key=lambda kv: -kv[1])
    assert [c.kind for c in chosen] == ["word"] * 3
    assert chosen[-1].cumulative_saved == sum(expected.values()) == _real_saving(tok, chosen, texts)


def test_subword_merge_saves_its_pair_occurrences(tok, space):
    texts = ["Of, gastritis; colitis; nephritis, arthritis. dermatitis"] * 3 + ["hepatitis and colitis."] * 4
    chosen = _select(texts, space, kinds=("subword",))
    # Pair occurrences over the base cuts of every word, by hand.
    pairs: Counter = Counter()
    for text in texts:
        for word, _ in space.pre_tokens(text):
            pieces = space.pieces(word)
            pairs.update(zip(pieces, pieces[1:]))
    (best, n), (_, runner_up) = pairs.most_common(2)
    assert best == ("it", "is") and n > runner_up
    first = chosen[0]
    assert (first.kind, first.merge, first.token, first.surface) == ("subword", ["it", "is"], "itis", "itis")
    assert first.tokens_saved == n == 23
    assert all(c.kind == "subword" for c in chosen) and len(chosen) > 1
    assert chosen[-1].cumulative_saved == sum(c.tokens_saved for c in chosen) == _real_saving(tok, chosen, texts)


def test_phrase_saves_count_times_pieces_of_its_words_minus_one(tok, space):
    texts = ["Of, kidney stone."] * 5
    chosen = _select(texts, space, kinds=("phrase",), max_phrase_words=2)
    expected = 5 * (_pieces(space, "Ġkidney") + _pieces(space, "Ġstone") - 1)
    assert [(c.token, c.kind, c.parts, c.tokens_saved) for c in chosen] == [
        ("ĠkidneyĠstone", "phrase", ["Ġkidney", "Ġstone"], expected)
    ]
    assert expected == 50
    assert chosen[0].cumulative_saved == expected == _real_saving(tok, chosen, texts)


def test_word_inside_a_chosen_phrase_saves_only_outside_it(tok, space):
    # " this Licensee" 15 times; " Licensee" 25 times, 15 of them inside the phrase.
    texts = ["Of, this Licensee; Licensee."] * 10 + ["Of, this Licensee."] * 5
    chosen = _select(texts, space, kinds=("word", "phrase"), max_phrase_words=2)
    phrase = 15 * (_pieces(space, "Ġthis") + _pieces(space, "ĠLicensee") - 1)
    word_alone = 25 * (_pieces(space, "ĠLicensee") - 1)
    word_after_phrase = (25 - 15) * (_pieces(space, "ĠLicensee") - 1)
    assert (phrase, word_alone, word_after_phrase) == (30, 25, 10)
    assert _saved(chosen) == {"ĠthisĠLicensee": phrase, "ĠLicensee": word_after_phrase, "Of": 15}
    ranks = {c.token: c.rank for c in chosen}
    assert ranks["ĠthisĠLicensee"] < ranks["ĠLicensee"]
    assert chosen[-1].cumulative_saved == 55 == _real_saving(tok, chosen, texts)


def test_phrase_inside_a_longer_chosen_phrase_saves_only_outside_it(tok, space):
    # " zorblax kidney stone" 10 times; " kidney stone" 13 times, 10 of them inside the longer phrase.
    texts = ["Of, zorblax kidney stone; nope."] * 10 + ["Of, kidney stone."] * 3
    chosen = _select(texts, space, kinds=("phrase",))
    z, k, s = (_pieces(space, w) for w in ("Ġzorblax", "Ġkidney", "Ġstone"))
    longer = 10 * (z + k + s - 1)
    inner_alone = 13 * (k + s - 1)
    assert longer > inner_alone  # so the longer one is chosen first
    inner_after = (13 - 10) * (k + s - 1)
    assert _saved(chosen) == {"ĠzorblaxĠkidneyĠstone": longer, "ĠkidneyĠstone": inner_after}
    assert [c.token for c in chosen] == ["ĠzorblaxĠkidneyĠstone", "ĠkidneyĠstone"]
    # " zorblax kidney" only ever occurs inside the chosen longer phrase: it saves nothing, so it is not ranked.
    assert chosen[-1].cumulative_saved == 190 == _real_saving(tok, chosen, texts)


def test_two_overlapping_phrases_fire_leftmost_first(tok, space):
    # " stone zorblax" is chosen first; in " kidney stone zorblax" the later " kidney stone" then fires
    # leftmost and leaves " zorblax" loose, saving (kidney + 1) - (1 + zorblax) there.
    texts = ["Of, kidney stone zorblax."] * 6 + ["Of, stone zorblax."] * 4
    chosen = _select(texts, space, kinds=("phrase",), max_phrase_words=2)
    k, s, z = (_pieces(space, w) for w in ("Ġkidney", "Ġstone", "Ġzorblax"))
    first = 10 * (s + z - 1)
    second = 6 * ((k + 1) - (1 + z))
    assert [(c.token, c.tokens_saved) for c in chosen] == [("ĠstoneĠzorblax", first), ("ĠkidneyĠstone", second)]
    assert chosen[-1].cumulative_saved == first + second == _real_saving(tok, chosen, texts)


def test_phrase_overlapping_itself_is_counted_once_per_firing(tok, space):
    texts = ["Ok, zorb zorb zorb."] * 3
    chosen = _select(texts, space, kinds=("phrase",), max_phrase_words=2, min_count=2)
    assert [c.token for c in chosen] == ["ĠzorbĠzorb"]
    # Per document the phrase fires once (leftmost), then ' zorb' is loose.
    expected = 3 * (2 * _pieces(space, "Ġzorb") - 1)
    assert chosen[0].tokens_saved == expected == _real_saving(tok, chosen, texts)


def test_projection_is_exact_at_every_point_on_a_mixed_corpus(tok, space):
    texts = [
        "Of, gastritis; colitis; nephritis, arthritis. dermatitis the kidney stone",
        "hepatitis and colitis. zorblax kidney stone",
    ] * 4 + tinymodels.TRAINING_TEXT
    chosen = _select(texts, space, min_docs=2)
    kinds = {c.kind for c in chosen}
    assert kinds == {"word", "subword", "phrase"}
    for n in curve_points(len(chosen)):
        assert chosen[n - 1].cumulative_saved == _real_saving(tok, chosen[:n], texts), n
    # Ranked by marginal saving, each the sum of those above it.
    assert all(a.tokens_saved >= b.tokens_saved for a, b in zip(chosen, chosen[1:]))
    assert [c.rank for c in chosen] == list(range(1, len(chosen) + 1))


def test_projection_counts_every_occurrence_in_the_other_corpus(tok, space):
    # Held-out text is counted to measure, not to select: a phrase seen there once still saves tokens.
    chosen = _select(["Of, kidney stone."] * 6, space, kinds=("phrase",), max_phrase_words=2)
    held = ["Ok, kidney stone.", "Hm, zorblax."]
    curve = project(chosen, count_corpus(held, space, max_phrase_words=2, runs=True), space, [1])
    expected = _pieces(space, "Ġkidney") + _pieces(space, "Ġstone") - 1
    assert curve[0]["tokens_saved"] == expected == _real_saving(tok, chosen, held)


def _random_docs(rng: random.Random, n: int) -> list[str]:
    words = ["zorb", "kidney", "stone", "blorf", "the"]
    return [
        "Ok, " + ", ".join(" ".join(rng.choice(words) for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(1, 4))) + "."
        for _ in range(n)
    ]


def test_held_out_projection_is_exact_with_overlapping_phrase_chains(tok, space):
    # Runs of up to five words from a five-word pool: repeats, chains of overlapping phrases, containment.
    rng = random.Random(0)
    checked = 0
    for _ in range(12):
        train, held = _random_docs(rng, 12), _random_docs(rng, 6)
        chosen = _select(train, space, min_count=2)
        if not chosen:
            continue
        points = curve_points(len(chosen))
        curve = project(chosen, count_corpus(held, space, runs=True), space, points)
        assert [p["n"] for p in curve] == points
        for point in curve:
            assert point["tokens_saved"] == _real_saving(tok, chosen[: point["n"]], held), (train, held, point)
            checked += 1
    assert checked > 30


# ---------------------------------------------------------------------------------------------------
# Which candidates


def test_word_initial_candidates_carry_the_space_marker_and_word_medial_ones_do_not(space):
    chosen = _select(MIXED, space, min_docs=2)
    assert {c.kind for c in chosen} == {"word", "subword", "phrase"}
    by_token = {c.token: c for c in chosen}
    assert by_token["Ġkidney"].surface == " kidney" and by_token["Ġkidney"].kind == "word"
    assert by_token["itis"].surface == "itis" and by_token["itis"].kind == "subword"
    for c in chosen:
        assert c.token.startswith("Ġ") == c.surface.startswith(" "), c
        if c.kind == "phrase":
            assert c.token == "".join(c.parts) and all(p.startswith("Ġ") for p in c.parts[1:])
        assert c.base_pieces == [p for w in (c.parts or [c.token]) for p in space.pieces(w)] or c.kind == "subword"


def test_digits_and_control_characters_are_left_out_by_default(_tiny_tokenizers):
    from tokenizers import Tokenizer

    # SentencePiece-style words run from one ▁ to the next, so digits and control characters stay inside
    # them; a control character in the vocabulary keeps byte fallback out of the way.
    spec = json.loads(_tiny_tokenizers["sp_bpe"].backend_tokenizer.to_str())
    spec["model"]["vocab"]["\x07"] = len(spec["model"]["vocab"])
    sp = TokenSpace.of(Tokenizer.from_str(json.dumps(spec)))
    assert not sp.has_fallback(sp.pieces("▁tor\x07blax")) and not sp.has_fallback(sp.pieces("▁covid24"))
    texts = ["the covid24 report and the tor\x07blax and the kidneys"] * 6
    counts = count_corpus(texts, sp)
    assert {"▁covid24", "▁tor\x07blax", "▁kidneys"} <= set(counts.words)

    def words(**settings):
        return {c.token for c in select_candidates(counts, sp, SelectSettings(kinds=("word",), **settings))[0]}

    default = words()
    assert "▁kidneys" in default
    assert "▁covid24" not in default and "▁tor\x07blax" not in default
    allowed = words(allow_digits=True)
    assert "▁covid24" in allowed and "▁tor\x07blax" not in allowed


def test_tokens_already_in_the_vocabulary_are_not_candidates(tok):
    from tokenizers import Tokenizer

    # A vocabulary that holds a word, a phrase and a subword which the merges do not produce.
    spec = json.loads(tok.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    for extra in ("Ġzorblax", "ĠtheĠkidneyĠstone", "itis"):
        vocab[extra] = len(vocab)
    space = TokenSpace.of(Tokenizer.from_str(json.dumps(spec)))
    assert len(space.pieces("Ġzorblax")) > 1
    texts = [f"Of, zorblax; {t}" for t in MIXED]
    tokens = {c.token for c in _select(texts, space)}
    assert tokens and not tokens & {"Ġzorblax", "ĠtheĠkidneyĠstone", "itis"}
    # The same corpus under the unedited vocabulary offers all three.
    assert {"Ġzorblax", "ĠtheĠkidneyĠstone", "itis"} <= {c.token for c in _select(texts, TokenSpace.of(tok))}


def test_min_count_and_min_docs(space):
    texts = ["Of, zorblax."] * 4 + ["Of, kidney; kidney; kidney; kidney; kidney; kidney."]
    counts = count_corpus(texts, space)

    def words(**settings):
        return {c.token for c in select_candidates(counts, space, SelectSettings(kinds=("word",), **settings))[0]}

    # zorblax: 4 times in 4 documents; kidney: 6 times in 1 document; Of: 5 times in 5 documents.
    assert words() == {"Of"}
    assert words(min_count=4) == {"Of", "Ġzorblax"}
    assert words(min_docs=1) == {"Of", "Ġkidney"}
    assert words(min_count=6, min_docs=1) == {"Ġkidney"}


def test_min_count_one_admits_a_phrase_seen_once(space):
    counts = count_corpus(["Of, kidney stone.", "Ok, zorblax."], space, max_phrase_words=2)
    chosen, _ = select_candidates(counts, space, SelectSettings(kinds=("phrase",), min_count=1, min_docs=1, max_phrase_words=2))
    assert [c.token for c in chosen] == ["ĠkidneyĠstone"]


# Thirteen words that share the ending -itis, each too rare to be a word candidate.
ITIS = ["gastritis", "colitis", "nephritis", "arthritis", "dermatitis", "hepatitis", "otitis", "uveitis", "rhinitis",
        "mastitis", "cystitis", "bursitis", "tendinitis"]


def test_a_subwords_documents_are_the_distinct_documents_of_its_words_and_min_docs_applies(space):
    def itis(texts, **settings):
        chosen = _select(texts, space, kinds=("subword",), min_count=2, **settings)
        return next((c for c in chosen if c.token == "itis"), None)

    # All thirteen in one document: 13 words, 1 document, fewer than --min-docs 3.
    one_doc = [" ".join(ITIS) + "."] + ["Of, the kidney stone."] * 5
    assert itis(one_doc, min_docs=3) is None
    assert itis(one_doc, min_docs=1).doc_count == 1
    # Spread over four documents, three words each (one twice): 4 documents.
    four_docs = [" ".join(ITIS[i : i + 3]) + "." for i in (0, 3, 6, 9)] + [f"{ITIS[12]} {ITIS[0]}."]
    assert itis(four_docs, min_docs=3).doc_count == 5 and itis(four_docs, min_docs=6) is None
    # Past the documents kept per word the figure is a lower bound, and says so.
    from vocabx.analyze.selection import distinct_docs

    counts = count_corpus([f"Of, {w} zorb." for w in ITIS[:4]] + ["Ok, zorb."] * 3, space, keep_docs=2)
    assert counts.first_docs.of("Ġzorb") == (0, 1) and counts.word_docs["Ġzorb"] == 7
    assert distinct_docs(["Ġgastritis", "Ġcolitis"], counts) == (2, True)
    assert distinct_docs(["Ġgastritis", "Ġzorb"], counts) == (7, False)


def test_a_subwords_document_count_that_is_a_lower_bound_says_so_in_the_report(space):
    # ' gastritis' in nine documents, more than the two the counter keeps per word: the documents of
    # -itis are at least nine, and the report marks the figure as a lower bound; the other subwords'
    # counts are exact and carry no mark.
    from vocabx.report import candidates_tsv, report_markdown

    texts = [f"Of, gastritis {ITIS[1 + i % 12]}." for i in range(9)] + [" ".join(ITIS[1:7]) + "."]
    counts = count_corpus(texts, space, keep_docs=2)
    chosen, _ = select_candidates(counts, space, SelectSettings(kinds=("subword",), min_count=2, min_docs=1))
    itis = next(c for c in chosen if c.token == "itis")
    assert itis.doc_count >= 9 and itis.as_dict()["doc_count_exact"] is False
    exact = [c for c in chosen if c.doc_count_exact is None]
    assert all("doc_count_exact" not in c.as_dict() for c in exact)
    report = {"candidates": [c.as_dict() for c in chosen], "corpus": {"tokens": 100}}
    markdown = report_markdown(report)
    assert f"≥ {itis.doc_count}" in markdown and "docs ≥ n: at least n documents" in markdown
    assert f"\t{itis.doc_count}\t" in candidates_tsv(report)  # (the TSV keeps a plain number)


def test_a_token_string_is_chosen_once_and_the_extender_gets_each_once(tok, space):
    # ' zorb' is chosen whole first (10 x 3 tokens); then merges in the rarer ' zorbax', ' zorbix', ...
    # build ' zorb' again: the merge that would make that string once more is not a second candidate.
    texts = ["Of, zorb zorb." for _ in range(5)] + ["Ok, zorbax zorbix zorbul zorbem zorbon."] * 3
    assert space.pieces("Ġzorb") == ("Ġ", "z", "or", "b") and space.pieces("Ġzorbax")[:4] == ("Ġ", "z", "or", "b")
    chosen = _select(texts, space, kinds=("word", "subword"))
    tokens = [c.token for c in chosen]
    assert tokens[:3] == ["Ġzorb", "Ġz", "Ġzor"] and tokens.count("Ġzorb") == 1
    assert len(set(tokens)) == len(tokens) == chosen[-1].rank
    for n in range(1, len(chosen) + 1):  # (the extender adds every one, and the model's savings are real)
        assert chosen[n - 1].cumulative_saved == _real_saving(tok, chosen[:n], texts), n


def test_candidates_longer_than_max_token_chars_are_left_out(tmp_path, tok, space, capsys):
    from vocabx.cli import main

    blob = "QmFzZQ" * 3400  # (a 20,400-letter word, as a base64 blob repeated in every document)
    texts = [f"Of, {blob} kidney zorblax." for _ in range(6)]
    counts = count_corpus(texts, space)
    for kinds in (("word",), ("phrase",)):
        chosen, _ = select_candidates(counts, space, SelectSettings(kinds=kinds))
        assert chosen and all(len(c.surface) <= 64 for c in chosen), kinds
    chosen, _ = select_candidates(counts, space, SelectSettings(kinds=("word",), max_token_chars=30_000))
    assert chosen[0].surface == " " + blob
    # subwords: merges inside the blob (it is two words here) stop at the cap
    chosen, _ = select_candidates(count_corpus([f"{blob}, {blob}."] * 6, space), space, SelectSettings(kinds=("subword",), max_new=400))
    assert chosen and max(len(c.surface) for c in chosen) <= 64
    with pytest.raises(VocabxError, match=r"--max-token-chars must be a whole number of at least 1, got 0"):
        SelectSettings(max_token_chars=0)
    model, corpus = tmp_path / "tiny", tmp_path / "blob.txt"
    tok.save_pretrained(model)
    corpus.write_text("".join(f"{t} {d}\n" for t, d in zip(texts * 2, _filler(12))))  # (1,000 words at least)
    out = tmp_path / "out"
    args = ["analyze", str(corpus), "--model", str(model), "-o", str(out), "--holdout", "0", "--quiet", "--line-docs", "--kinds", "word"]
    assert main(args + ["--max-token-chars", "100000"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["max_token_chars"] == 100_000 and report["candidates"][0]["surface"] == " " + blob
    assert main(args + ["--overwrite"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["max_token_chars"] == 64 and all(len(c["surface"]) <= 64 for c in report["candidates"])


def _filler(n_docs: int, seed_words: str = "") -> list[str]:
    """Documents of a few hundred words each, from the tiny tokenizer's training text."""
    base = " ".join(tinymodels.TRAINING_TEXT[:12])
    return [f"{seed_words} {base} Number {i}." for i in range(n_docs)]


def test_case_variants_are_grouped(tok):
    docs = [f"Licensee agrees. The Licensee and the LICENSEE; licensee {d}." for d in _filler(12)]
    result = analyze(docs, tok, holdout=None, settings=SelectSettings(kinds=("word",)))
    by_surface = {c.surface: c for c in result.candidates}
    group = {" Licensee", "Licensee", " LICENSEE", " licensee"} & set(by_surface)
    assert len(group) >= 3
    for surface in group:
        assert set(by_surface[surface].variants) == group - {surface}
    assert all(not c.variants for c in result.candidates if c.surface.strip().lower() != "licensee")
    assert result.report["candidates"][0]["variants"] == result.candidates[0].variants


def test_analyze_skips_none_and_refuses_what_is_not_a_list_of_texts(tok):
    docs = _filler(12, "Licensee agrees.")
    plain = analyze(docs, tok, holdout=None, settings=SelectSettings(kinds=("word",))).candidates
    gaps = analyze([None, *docs, None], tok, holdout=None, settings=SelectSettings(kinds=("word",))).candidates
    assert [(c.token, c.count) for c in gaps] == [(c.token, c.count) for c in plain]
    with pytest.raises(VocabxError, match=r"texts is one str of \d+ characters, not a list of documents"):
        analyze(docs[0], tok, holdout=None)
    with pytest.raises(VocabxError, match=r"reference: document 0 is int \(7\), not text"):
        analyze(docs, tok, holdout=None, reference=[7])


def test_progress_is_a_callable_true_or_false_and_the_callable_sees_every_byte(tok):
    docs = [f"Licensee agrees. {d}" for d in _filler(12)]
    seen: list[int] = []
    words = {c.token for c in analyze(docs, tok, holdout=None, progress=seen.append, settings=SelectSettings(kinds=("word",))).candidates}
    assert sum(seen) == sum(len(d.encode("utf-8")) for d in docs)
    for flag in (False, True, None):
        assert {c.token for c in analyze(docs, tok, holdout=None, progress=flag, settings=SelectSettings(kinds=("word",))).candidates} == words
    with pytest.raises(VocabxError, match=r"progress must be True, False, None or a callable .* got 3"):
        analyze(docs, tok, holdout=None, progress=3)


# ---------------------------------------------------------------------------------------------------
# Holdout split, counts files, helpers


def test_split_holdout_is_seeded_keeps_duplicates_together_and_respects_the_fraction():
    texts = [f"document number {i} about nothing" for i in range(2000)]
    texts += texts[:300]  # exact duplicates, later in the stream

    def split(seed):
        train, held = split_holdout(iter(texts), 0.2, seed)
        return list(train), held

    train, held = split(7)
    assert split(7) == (train, held)
    assert split(8)[1] != held
    assert len(train) + len(held) == len(texts)
    assert not set(train) & set(held)
    assert 0.17 < len(set(held)) / 2000 < 0.23
    # Streaming: order kept on both sides.
    assert train == [t for t in texts if t not in set(held)]


def test_counts_save_load_round_trip_and_shards_merge_to_the_whole(tmp_path, space):
    texts = [f"Of, the kidney stone {w} and zorblax; {w} colitis." for w in ("alpha", "beta", "gamma")] * 5
    whole = count_corpus(texts, space, runs=True)
    shard_a, shard_b = count_corpus(texts[:7], space, runs=True), count_corpus(texts[7:], space, runs=True)
    assert shard_a.runs
    path = tmp_path / "a.counts.json.gz"
    shard_a.save(path, meta={"model": "tiny", "shard": "0/2"})
    loaded, meta = Counts.load(path)
    assert meta == {"model": "tiny", "shard": "0/2"}
    assert loaded == shard_a
    merged = loaded.merge(shard_b)
    for name in ("docs", "bytes", "words", "word_docs", "phrases", "phrase_docs", "surfaces", "examples", "runs"):
        assert getattr(merged, name) == getattr(whole, name), name
    assert merged.first_docs == whole.first_docs and whole.first_docs.of("Ġalpha") == (0, 3, 6, 9, 12)
    assert whole.phrases[("Ġkidney", "Ġstone")] == 15 and whole.phrase_docs[("Ġkidney", "Ġstone")] == 15
    assert not list(tmp_path.glob("*.tmp"))


def test_shards_merge_to_the_whole_for_phrases_seen_once_per_shard(space):
    # A corpus too large for one machine is counted in shards: a phrase once in each is twice in the whole.
    a, b = ["Of, kidney stone."], ["Ok, kidney stone."]
    whole = count_corpus(a + b, space)
    merged = count_corpus(a, space).merge(count_corpus(b, space))
    assert whole.phrases[("Ġkidney", "Ġstone")] == 2
    assert merged.phrases == whole.phrases and merged.phrase_docs == whole.phrase_docs


@pytest.mark.parametrize("max_phrases", [40, 150, 10_000])
def test_a_bounded_ngram_table_keeps_what_merging_and_pruning_each_batch_keeps(space, max_phrases):
    # The counter looks each batch's n-grams up in its table and prunes before merging; the result must
    # be what adding each batch's counts and then dropping the rarest (threshold rising from the last
    # one) until half the limit remains gives.
    counting = importlib.import_module("vocabx.analyze.counting")
    docs = _random_docs(random.Random(7), 400)
    batch_bytes = 2_000
    batches = list(counting._batches_by_bytes(iter(docs), batch_bytes))
    assert len(batches) > 5
    table: Counter = Counter()
    table_docs: Counter = Counter()
    pruned = 0
    for batch in batches:
        one = count_corpus(batch, space, max_phrases=10**9, workers=1)
        table.update(one.phrases)
        table_docs.update(one.phrase_docs)
        if len(table) > max_phrases:
            threshold = max(2, pruned + 1)
            while len(table) > max_phrases // 2:
                table = Counter({k: c for k, c in table.items() if c >= threshold})
                table_docs = Counter({k: c for k, c in table_docs.items() if k in table})
                pruned, threshold = threshold, threshold + 1
    counted = count_corpus(docs, space, max_phrases=max_phrases, batch_bytes=batch_bytes, workers=1)
    assert counted.pruned_below == pruned
    assert counted.phrases == table
    assert counted.phrase_docs == Counter({k: table_docs[k] for k in table if table_docs[k]})
    if max_phrases < 1000:
        assert pruned >= 2  # (the limit was reached)
    else:
        assert pruned == 0


# Text that exercises the byte-level pre-tokenizer: contractions, digits, punctuation runs, every kind
# of whitespace, ASCII controls that are not whitespace, non-ASCII letters, marks, spaces and symbols,
# and an added token's text.
_TRICKY = ["the", " kidney", " stone", "'s", "'ll", "'", "42", " 7", ",", " (", ");", "  ", " ", "\t", "\n", "\r\n",
           "\x0b", "\x0c", "\x1c", "\x1f", "é", " café", "ß", "’s", " naïve", "\u0301", "\xa0", "\x85", "\u3000",
           "日本", " 😀", "Ⅻ", "<|endoftext|>", "x", " Y"]


def _counts_both_ways(texts, space):
    """count_corpus with the words split in Python, and with them read off the tokenizer's encodings."""
    counting = sys.modules[count_corpus.__module__]
    fast = count_corpus(texts, space, runs=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(counting, "_splits_like_gpt2", lambda space: False)
        slow = count_corpus(texts, space, runs=True)
    return fast, slow


def _assert_same_counts(fast, slow):
    for name in ("docs", "bytes", "words", "word_docs", "phrases", "phrase_docs", "surfaces", "examples", "runs", "pruned_below"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert a == b, name
        if isinstance(a, dict):  # the order too: it breaks ties between equal candidates
            assert list(a) == list(b), name
    assert fast.first_docs.table == slow.first_docs.table


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_TRICKY), max_size=40).map("".join), min_size=1, max_size=6))
def test_words_split_in_python_are_the_tokenizers_words(_tiny_tokenizers, texts):
    space = TokenSpace.of(_tiny_tokenizers["byte_bpe"])
    from vocabx.analyze.counting import _HashCounter

    assert _HashCounter(space, 4, True, 100).python_words
    _assert_same_counts(*_counts_both_ways(texts, space))


@pytest.mark.parametrize("doc_order", [True, False])
def test_grouping_counts_each_keys_occurrences_and_distinct_documents(_tiny_tokenizers, doc_order):
    """Against a plain count; in document order the distinct documents come from the stable sort
    alone, otherwise from sorted (key, document) pairs."""
    import numpy as np

    from vocabx.analyze.counting import _HashCounter

    counter = _HashCounter(TokenSpace.of(_tiny_tokenizers["byte_bpe"]), 4, True, 100)
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 12, 500).astype(np.uint64) * np.uint64(2**61 + 1)
    docs = rng.integers(0, 40, 500)
    if doc_order:
        docs.sort()
    uniq, rep, group, cnt, doc_counts = counter._group(keys, docs)
    want = sorted(set(keys.tolist()))
    assert uniq.tolist() == want and [keys[i] for i in rep.tolist()] == want
    assert [want[g] for g in group.tolist()] == keys.tolist()
    assert cnt.tolist() == [keys.tolist().count(k) for k in want]
    assert doc_counts.tolist() == [len({d for k2, d in zip(keys.tolist(), docs.tolist()) if k2 == k}) for k in want]


def test_grouping_numbered_keys_agrees_with_sorting_every_position(_tiny_tokenizers):
    """Words split in Python arrive numbered by surface, counted per surface by the splitter: grouping
    them sorts only the distinct keys, and must give what sorting every position gives; two numbers
    with one key fall back to that."""
    import numpy as np

    from vocabx.analyze.counting import _distinct_per_code, _HashCounter, _Split

    def split_of(codes, code_keys, docs):
        k = len(code_keys)
        count = np.bincount(codes, minlength=k)
        return _Split([str(i) for i in range(k)], codes, [], [], code_keys, count, _distinct_per_code(codes, docs, k), {})

    counter = _HashCounter(TokenSpace.of(_tiny_tokenizers["byte_bpe"]), 4, True, 100)
    rng = np.random.default_rng(0)
    code_keys = rng.integers(0, 2**63, 50).astype(np.uint64)
    codes = np.concatenate([np.arange(50), rng.integers(0, 50, 400)]).astype(np.int32)
    rng.shuffle(codes)
    docs = np.sort(rng.integers(0, 30, len(codes)))
    uniq, group, cnt, doc_counts, rank = counter._group_coded(split_of(codes, code_keys, docs))
    assert uniq[rank].tolist() == code_keys.tolist()
    want_uniq, _, want_group, want_cnt, want_docs = counter._group(code_keys[codes], docs)
    assert uniq.tolist() == want_uniq.tolist() and group.tolist() == want_group.tolist()
    assert cnt.tolist() == want_cnt.tolist() and doc_counts.tolist() == want_docs.tolist()
    same_key = split_of(np.array([0, 1, 0], np.int32), np.array([7, 7], np.uint64), np.array([0, 0, 1]))
    assert counter._group_coded(same_key) is None
    assert _distinct_per_code(np.array([1, 0, 1, 1]), np.array([0, 0, 0, 1]), 3).tolist() == [1, 2, 0]


@pytest.mark.parametrize("workers", [2, 3])
def test_a_worker_process_splitting_ahead_counts_what_one_process_counts(_tiny_tokenizers, workers):
    """Several batches (small ``batch_bytes``): the forked worker splits each next batch while the
    counter counts the current one; with three cores or more the n-grams of each length are grouped in
    threads on the cores the worker leaves, with two in the counting thread itself. The counts, their
    order included, match splitting and grouping inline."""
    import multiprocessing
    import threading

    if not sys.platform.startswith("linux") or "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("the splitting worker is forked on Linux only: elsewhere counting splits inline")
    space = TokenSpace.of(_tiny_tokenizers["byte_bpe"])
    texts = ["".join(_TRICKY[(i * 7 + j) % len(_TRICKY)] for j in range(30)) for i in range(60)]
    texts += ["the kidney stone, the kidney stone's café"] * 20
    counting = sys.modules[count_corpus.__module__]
    started = []
    real_worker = counting._splitting_worker

    def recorded(splitter):
        started.append(splitter)
        return real_worker(splitter)

    grouped_in = set()
    real_group = counting._HashCounter._group

    def group(self, keys, docs, positions=True):
        grouped_in.add(threading.current_thread() is threading.main_thread())
        return real_group(self, keys, docs, positions)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(counting._HashCounter, "_group", group)
        inline = count_corpus(texts, space, runs=True, batch_bytes=200, workers=1)
        assert not started and grouped_in == {True}
        grouped_in.clear()
        mp.setattr(counting, "_splitting_worker", recorded)
        forked = count_corpus(texts, space, runs=True, batch_bytes=200, workers=workers)
    assert len(started) == 1
    if workers == 2:
        assert grouped_in == {True}  # (the worker takes the second core: grouping stays in this thread)
    else:
        assert False in grouped_in  # (n-grams grouped in the pool's threads)
    _assert_same_counts(forked, inline)
    assert inline.phrases[("Ġthe", "Ġkidney", "Ġstone")] >= 20  # (one per document at least)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_TRICKY), max_size=12).map("".join), max_size=8), st.integers(0, 8))
def test_two_splits_joined_are_the_split_of_the_joined_documents(_tiny_tokenizers, texts, cut):
    from vocabx.analyze.counting import _HashCounter, _joined

    splitter = _HashCounter(TokenSpace.of(_tiny_tokenizers["byte_bpe"]), 4, True, 100, keep_docs=2).splitter()
    cut = min(cut, len(texts))
    # (two splitters, as in the two processes that split the halves: each tokenizes what it meets first)
    other = _HashCounter(TokenSpace.of(_tiny_tokenizers["byte_bpe"]), 4, True, 100, keep_docs=2).splitter()
    joined = _joined(splitter(texts[:cut]), other(texts[cut:]), cut)
    want = _HashCounter(TokenSpace.of(_tiny_tokenizers["byte_bpe"]), 4, True, 100, keep_docs=2).splitter()(texts)
    assert joined.local == want.local and joined.where.tolist() == want.where.tolist()
    assert joined.lengths == want.lengths and joined.encoded == want.encoded
    assert joined.keys.tolist() == want.keys.tolist()
    assert joined.count.tolist() == want.count.tolist() and joined.docs.tolist() == want.docs.tolist()
    # each surface's first two documents (the joined split may list more: the counter keeps the first)
    def first_two(split):
        docs = {}
        for pair in sorted(split.first_docs.tolist()):
            docs.setdefault(pair >> 32, []).append(pair & 0xFFFFFFFF)
        return {code: d[:2] for code, d in docs.items()}

    assert first_two(joined) == first_two(want)
    # every surface's token ids come with it once, from whichever half met it first
    assert sorted(joined.new_ids) == list(range(len(want.local)))
    assert all(joined.new_ids[i] == want.new_ids[i] for i in want.new_ids)


@pytest.mark.slow
def test_words_split_in_python_are_smollm2s_words_on_the_legal_sample(smollm2_tokenizer):
    from vocabx.corpus import read_corpus

    texts = list(read_corpus([str(LEGAL)]))[:40]
    texts += ["It’s the Licensee’s duty — see § 4.2(b)… <|endoftext|> naïve café 日本語  \t\n done"]
    _assert_same_counts(*_counts_both_ways(texts, TokenSpace.of(smollm2_tokenizer)))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(["a", "b", "ab", " a", " b", " ab", " ba", ".", " é", "é", "\n"]), max_size=30).map("".join), max_size=5),
    st.lists(st.lists(st.sampled_from(["a", "b", "ab", " a", " b", " ab", " ba", "é", " é"]), min_size=1, max_size=4).map("".join), max_size=20),
)
def test_first_match_finds_what_a_scan_finds(docs, needles):
    from vocabx.analyze.examples import _FirstMatch

    finder = _FirstMatch(docs)
    joined = "\x00".join(docs)
    for needle in needles + ["", "\x00"]:
        if needle and "\x00" not in needle:
            assert finder.find(needle) == joined.find(needle), needle
        else:
            first = next((finder.offsets[k] + d.find(needle) for k, d in enumerate(docs) if needle in d), -1)
            assert finder.find(needle) == first, needle


@pytest.mark.parametrize("max_phrase_words", [2, 3, 4])
@pytest.mark.parametrize("min_count,min_docs", [(1, 1), (2, 1), (3, 2)])
def test_phrase_seeds_from_the_counters_table_select_what_the_phrase_dicts_select(space, max_phrase_words, min_count, min_docs):
    # Without weights, phrase seeds and their first gains come from the counter's n-gram table with numpy;
    # counts without the table (loaded, merged, built by hand) take the dicts one by one. Same ranking.
    rng = random.Random(max_phrase_words * 100 + min_count * 10 + min_docs)
    vocab = ["kidney", "stone", "very", "the", "colitis", "of", "zorb", "Kidney", "naïve", "42", "é", "x"]
    texts = [
        " ".join(rng.choice(vocab) for _ in range(rng.randint(3, 30))) + rng.choice([".", ",", "", " very very very"])
        for _ in range(60)
    ] + MIXED + ["Ok, zorb zorb zorb zorb."] * 3
    counts = count_corpus(texts, space, max_phrase_words=max_phrase_words)
    assert counts.phrase_table is not None and counts.phrase_table.valid_for(counts, max_phrase_words)
    chosen_settings = SelectSettings(min_count=min_count, min_docs=min_docs, max_phrase_words=max_phrase_words)
    fast, _ = select_candidates(counts, space, chosen_settings)
    plain = copy.copy(counts)
    plain.phrase_table = None
    slow, _ = select_candidates(plain, space, chosen_settings)
    assert any(c.kind == "phrase" for c in fast)
    assert [c.as_dict() for c in fast] == [c.as_dict() for c in slow]
    # A table read by more words than it holds, or for changed phrases, is not used.
    assert not counts.phrase_table.valid_for(counts, max_phrase_words + 1)
    assert counts.merge(count_corpus(["Of, kidney stone."], space)).phrase_table is None


def test_min_cohesion_leaves_out_phrases_whose_last_word_is_a_guess(space):
    # " kidney stone": " stone" follows every " kidney"; " of the": " the" follows one " of" in four.
    texts = [f"Doc {i}: kidney stone; of the. of one. of two. of three; kidney stone." for i in range(8)]
    counts = count_corpus(texts, space, max_phrase_words=2)
    assert cohesion(("Ġkidney", "Ġstone"), counts.phrases[("Ġkidney", "Ġstone")], counts) == 1.0
    assert cohesion(("Ġof", "Ġthe"), counts.phrases[("Ġof", "Ġthe")], counts) == 0.25
    plain = copy.copy(counts)
    plain.phrase_table = None
    for source in (counts, plain):  # the counter's table and the phrase dicts filter alike
        kept = {c.token for c in select_candidates(source, space, SelectSettings(kinds=("phrase",), max_phrase_words=2))[0]}
        assert {"ĠkidneyĠstone", "ĠofĠthe"} <= kept
        cohesive = {c.token for c in select_candidates(source, space, SelectSettings(kinds=("phrase",), max_phrase_words=2, min_cohesion=0.3))[0]}
        assert "ĠkidneyĠstone" in cohesive and "ĠofĠthe" not in cohesive
        assert all(cohesion(tuple(c.parts), c.count, source) >= 0.3 for c in select_candidates(source, space, SelectSettings(kinds=("phrase",), max_phrase_words=2, min_cohesion=0.3))[0])
    with pytest.raises(VocabxError, match="--min-cohesion must be a share between 0 and 1, got 1.5"):
        SelectSettings(min_cohesion=1.5)


def _sites() -> tuple[list[str], list[str]]:
    """Three sites' documents: " kidney stone" on every site, " zorblax quintet" (a template) on site A only."""
    texts, groups = [], []
    for site in "ABC":
        for i, doc in enumerate(_filler(8)):
            extra = " Zorblax quintet, zorblax quintet." if site == "A" else ""
            texts.append(f"Site {site} {i}: kidney stone, kidney stone.{extra} {doc}")
            groups.append(site)
    return texts, groups


def test_min_groups_leaves_out_words_and_phrases_of_one_group(tok):
    texts, groups = _sites()
    kinds = ("word", "phrase")
    plain = {c.token: c for c in analyze(texts, tok, holdout=None, settings=SelectSettings(kinds=kinds)).candidates}
    assert {"ĠkidneyĠstone", "ĠzorblaxĠquintet"} <= plain.keys() and all(c.groups is None for c in plain.values())
    result = analyze(texts, tok, holdout=None, groups=groups, settings=SelectSettings(kinds=kinds, min_groups=2))
    grouped = {c.token: c for c in result.candidates}
    assert "ĠkidneyĠstone" in grouped and grouped["ĠkidneyĠstone"].groups == 3
    assert not any("zorblax" in t.lower() for t in grouped)  # the word and every phrase with it: site A only
    assert all(c.groups is not None and c.groups >= 2 for c in grouped.values())
    assert result.report["corpus"]["groups"] == 3 and result.report["settings"]["min_groups"] == 2
    assert result.report["candidates"][0]["groups"] >= 2
    # with a holdout the labels stay with their documents: held-out documents are neither counted nor grouped
    held = analyze(texts, tok, holdout=0.3, groups=groups, settings=SelectSettings(kinds=kinds, min_groups=3))
    assert held.report["holdout"]["docs"] > 0 and held.report["corpus"]["docs"] == len(texts) - held.report["holdout"]["docs"]
    assert "ĠkidneyĠstone" in {c.token for c in held.candidates}


def test_min_groups_errors_name_the_fix(tok):
    texts, groups = _sites()
    with pytest.raises(VocabxError, match=r"--min-groups 4 but the analyzed documents come from 3 group\(s\); lower --min-groups"):
        analyze(texts, tok, holdout=None, groups=groups, settings=SelectSettings(min_groups=4))
    with pytest.raises(VocabxError, match=r"--min-groups 2 needs each document's group: pass a corpus with --group-field"):
        analyze(texts, tok, holdout=None, settings=SelectSettings(min_groups=2))
    with pytest.raises(VocabxError, match=r"got 24 documents but 3 group labels"):
        analyze(texts, tok, holdout=None, groups=["A", "B", "C"], settings=SelectSettings(min_groups=2))
    with pytest.raises(VocabxError, match=r"--min-groups must be a whole number of at least 1, got 0"):
        SelectSettings(min_groups=0)


def _sites_on_disk(tmp_path: Path, tok) -> tuple[Path, Path]:
    """The tokenizer saved as a model folder, and :func:`_sites` as a JSONL file with a ``site`` field."""
    model = tmp_path / "tiny-tokenizer"
    tok.save_pretrained(model)
    texts, groups = _sites()
    corpus = tmp_path / "sites.jsonl"
    corpus.write_text("".join(json.dumps({"text": t, "site": g}) + "\n" for t, g in zip(texts, groups)))
    return model, corpus


def test_min_groups_on_the_command_line_reads_the_group_field(tmp_path, tok, capsys):
    from vocabx.cli import main

    model, corpus = _sites_on_disk(tmp_path, tok)
    out = tmp_path / "out"
    args = ["analyze", str(corpus), "--model", str(model), "-o", str(out), "--holdout", "0", "--quiet", "--min-groups", "2"]
    assert main(args) != 0  # without --group-field the groups are the files: one
    assert "come from 1 group(s); lower --min-groups or check --group-field" in capsys.readouterr().err
    assert main(args + ["--group-field", "site", "--kinds", "word,phrase"]) == 0
    lines = (out / "candidates.tsv").read_text(encoding="utf-8").splitlines()
    rows = [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]
    assert rows and all(int(r["groups"]) >= 2 for r in rows) and not any("zorblax" in r["token"].lower() for r in rows)
    assert "| docs | groups |" in (out / "report.md").read_text(encoding="utf-8")  # (a column only when grouped)
    assert "<th>groups</th>" in (out / "report.html").read_text(encoding="utf-8")


def test_holdout_groups_holds_out_whole_groups_and_measures_their_savings(tok):
    texts, groups = _sites()
    texts.append(texts[0])  # a document of site A that site C also has (a shared template)
    groups.append("C")
    kinds = ("word", "phrase")
    held_out = held_out_groups(groups, 0.34, seed=0)
    assert len(held_out) == 1 and held_out == held_out_groups(list(reversed(groups)), 0.34, seed=0)  # not the order
    assert {tuple(held_out_groups(groups, 0.34, seed=s)) for s in range(12)} == {("A",), ("B",), ("C",)}  # the seed picks
    assert held_out_groups(groups, 0.5, seed=0) == held_out_groups(groups, 0.5, seed=0) and len(held_out_groups(groups, 0.5, 0)) == 2
    assert len(held_out_groups(["A", "B"], 0.5, 0)) == 1  # at least one group stays for the analysis
    for seed in range(12):
        result = analyze(texts, tok, holdout=0.34, seed=seed, groups=groups, holdout_groups=True, settings=SelectSettings(kinds=kinds))
        holdout = result.report["holdout"]
        (group,) = holdout["groups"]
        assert holdout["by"] == "group" and holdout["fraction"] == 0.34
        in_group = [t for t, g in zip(texts, groups) if g == group]
        shared = 1 if group in "AC" else 0  # the held-out copy of a text the other group's copy puts in the analysis
        assert holdout["duplicates_left_out"] == shared and holdout["docs"] == len(in_group) - shared
        assert result.report["corpus"]["docs"] == len(texts) - len(in_group)
        if group == "A":  # site A's template is not in the other sites' text: the honest curve shows it
            assert not any("zorblax" in c.token.lower() for c in result.candidates)
    assert result.report["holdout_curve"] and result.report["holdout_curve"][-1]["fraction"] > 0
    plain = analyze(texts, tok, holdout=0.34, groups=groups, settings=SelectSettings(kinds=kinds)).report["holdout"]
    assert "by" not in plain and "groups" not in plain  # without the flag the split stays by document


def test_holdout_groups_errors_name_the_fix(tok):
    texts, groups = _sites()
    with pytest.raises(VocabxError, match=r"got 24 documents but 2 group labels; give one label per document"):
        split_by_groups(texts, ["A", "B"], 0.34, 0)
    with pytest.raises(VocabxError, match=r"--holdout-groups needs each document's group: pass a corpus with --group-field"):
        analyze(texts, tok, holdout=0.2, holdout_groups=True)
    with pytest.raises(VocabxError, match=r"documents come from 1 group\(s\); pass a corpus of several sources"):
        analyze(texts, tok, holdout=0.2, groups=["A"] * len(texts), holdout_groups=True)
    with pytest.raises(VocabxError, match=r"--holdout-groups holds out a --holdout share of the groups, but --holdout is 0"):
        analyze(texts, tok, holdout=None, groups=groups, holdout_groups=True)
    with pytest.raises(VocabxError, match=r"a --holdout share of the groups, in \(0, 0.5\]; got 0.8"):
        held_out_groups(groups, 0.8, 0)


def test_holdout_groups_on_the_command_line(tmp_path, tok, capsys):
    from vocabx.cli import main

    model, corpus = _sites_on_disk(tmp_path, tok)
    out = tmp_path / "out"
    args = ["analyze", str(corpus), "--model", str(model), "-o", str(out), "--quiet", "--kinds", "word,phrase", "--holdout-groups"]
    assert main(args + ["--holdout", "0"]) != 0
    assert "--holdout-groups holds out a --holdout share of the groups, but --holdout is 0" in capsys.readouterr().err
    assert main(args + ["--holdout", "0.34"]) != 0  # without --group-field the groups are the files: one
    assert "come from 1 group(s)" in capsys.readouterr().err
    assert main(args + ["--holdout", "0.34", "--shard", "0/2", "--group-field", "site"]) != 0
    assert "--holdout-groups works on a whole corpus, not on shards" in capsys.readouterr().err
    assert main(args + ["--holdout", "0.34", "--group-field", "site"]) == 0
    report = json.loads((out / "report.json").read_text())
    (group,) = report["holdout"]["groups"]
    assert f"saved (held-out groups: {group}; " in capsys.readouterr().out
    assert f"held-out groups: {group}" in (out / "report.md").read_text(encoding="utf-8")
    assert not any("--holdout-groups holds out whole groups instead" in note for note in report["notes"])
    # groups named but documents held out: the report says what that overstates
    plain = [a for a in args if a != "--holdout-groups"] + ["--holdout", "0.34", "--group-field", "site", "--overwrite"]
    assert main(plain) == 0
    notes = json.loads((out / "report.json").read_text())["notes"]
    assert any("overstates what the tokens save on other sources" in note for note in notes)


def test_counting_and_selecting_leave_the_garbage_collector_as_they_found_it(space):
    import gc

    texts = MIXED * 3
    assert gc.isenabled()
    counts = count_corpus(texts, space)
    select_candidates(counts, space, SelectSettings(min_docs=1))
    assert gc.isenabled()
    gc.disable()
    try:
        count_corpus(texts, space)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_counts_load_refuses_other_files(tmp_path):
    import gzip

    bad = tmp_path / "x.counts.json.gz"
    with gzip.open(bad, "wt") as f:
        json.dump({"schema": "something/9"}, f)
    with pytest.raises(VocabxError, match="schema"):
        Counts.load(bad)
    (tmp_path / "plain.gz").write_text("not gzip")
    with pytest.raises(VocabxError, match="plain.gz"):
        Counts.load(tmp_path / "plain.gz")


def test_curve_points_and_knee():
    assert curve_points(100) == [1, 2, 4, 8, 16, 32, 64, 100]
    assert curve_points(64) == [1, 2, 4, 8, 16, 32, 64]
    assert curve_points(1) == [1] and curve_points(0) == []
    curve = [{"n": n, "fraction": f} for n, f in [(1, 0.0), (2, 0.30), (4, 0.35), (8, 0.37), (16, 0.38)]]
    assert knee(curve) == 2
    assert knee([]) == 0 and knee(curve[:2]) == 2
    # a curve that does not rise: the smallest N at its top, and 0 where nothing is saved at all
    assert knee([{"n": n, "fraction": f} for n, f in [(1, 0.3), (2, 0.35), (4, 0.35), (8, 0.2)]]) == 2
    assert knee([{"n": n, "fraction": 0.0} for n in (1, 2, 4, 100)]) == 0


def test_specificity_ranks_domain_terms_above_general_ones(space):
    domain = count_corpus(["the kidney stone and the colitis"] * 50, space)
    reference = count_corpus(["the weather and the park"] * 50, space)
    z = specificity(domain, reference)
    assert z("Ġkidney") > 2 > z("Ġand")
    assert z("Ġweather") < 0
    assert z("", ("Ġkidney", "Ġstone")) > 2


# ---------------------------------------------------------------------------------------------------
# Bad input


def test_tiny_corpus_error_names_the_minimum(tok):
    for texts in ([], ["one short document"] * 3, ["many words here"] * 20):
        with pytest.raises(VocabxError) as info:
            analyze(texts, tok, holdout=None)
        message = str(info.value)
        assert f"{MIN_DOCS} documents" in message and f"{MIN_WORDS} words" in message
        assert "\n" not in message
    with pytest.raises(VocabxError, match=r"too small to analyze: 1 document and 1 word after"):  # (not "1 documents")
        analyze(["Hepatosplenomegaly"], tok, holdout=None)
    # copies of one document all go to one side: when that is the holdout, the message says so
    copies = ["the patient was admitted with hepatosplenomegaly and fever"] * 40
    side = next(seed for seed in range(200) if _copies_held_out(copies[0], seed))
    with pytest.raises(VocabxError, match=r"after the holdout \(which took 40 documents; exact copies of a document all go to the same side\)"):
        analyze(copies, tok, holdout=0.1, seed=side)


def _copies_held_out(text, seed):
    from vocabx.analyze import holdout_test

    return holdout_test(0.1, seed)(text)


def test_nothing_fragmented_gives_an_empty_report_with_a_note(tok, space):
    words = ["the", "patient", "and", "of", "Agreement", "shall", "was"]
    assert all(len(space.pieces("Ġ" + w)) == 1 for w in words)
    # Punctuation after every word: no two letter-words in a row, so no phrases either.
    docs = ["The, " + ", ".join(words * 6) + "." for _ in range(20)]
    result = analyze(docs, tok, holdout=None)
    assert result.candidates == [] and result.report["candidates"] == []
    assert any("nothing worth adding" in note for note in result.report["notes"])
    assert result.report["savings_curve"] == [] and result.report["recommended_n"] == 0


def test_nothing_fragmented_exits_zero_on_the_command_line(tmp_path, tok, space, capsys):
    from vocabx.cli import main

    model = tmp_path / "tiny-tokenizer"
    tok.save_pretrained(model)
    corpus = tmp_path / "plain.jsonl"
    words = ["the", "patient", "and", "of", "Agreement", "shall", "was"]
    corpus.write_text("".join(json.dumps({"text": "The, " + ", ".join(words * 6) + "."}) + "\n" for _ in range(20)))
    code = main(["analyze", str(corpus), "--model", str(model), "-o", str(tmp_path / "out"), "--holdout", "0", "--json", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["candidates"] == 0 and any("nothing worth adding" in n for n in summary["notes"])
    assert (tmp_path / "out" / "report.json").is_file()


@pytest.mark.parametrize("holdout", [-0.1, 0.51, 0.6, 1.0])
def test_holdout_outside_the_range_is_an_error(tok, holdout):
    with pytest.raises(VocabxError, match=r"--holdout must be a share of the documents in \[0, 0.5\], 0 for none, got"):
        analyze(_filler(20), tok, holdout=holdout)


def test_max_new_larger_than_the_candidates_is_a_note(tok):
    result = analyze(_filler(20, "zorblax kidney stone"), tok, holdout=0.2, settings=SelectSettings(max_new=50_000))
    n = len(result.candidates)
    assert 0 < n < 50_000
    assert f"--max-new 50000 is more than the {n} candidates found; the curve stops at {n}." in result.report["notes"]
    assert result.report["savings_curve"][-1]["n"] == n
    assert result.report["holdout_curve"] and result.report["holdout_curve"][-1]["n"] == n


def test_reference_in_another_script_still_works_with_a_note(tok):
    greek = ["Η σύμβαση διέπεται από το ελληνικό δίκαιο και οι συμβαλλόμενοι συμφωνούν σε όλους τους όρους."] * 30
    chinese = ["本协议受中华人民共和国法律管辖，双方同意以下条款。"] * 10
    result = analyze(_filler(20, "zorblax kidney stone"), tok, holdout=None, reference=greek + chinese)
    report = result.report
    assert result.candidates
    assert any("shares only" in note and "another language or script" in note for note in report["notes"])
    assert report["reference"]["docs"] == 40
    assert all(c.specificity is not None for c in result.candidates if c.kind != "subword")
    assert report["fragmentation"]["reference"] is not None


def test_the_reference_gets_its_own_curve_projected_on_its_first_documents(tok, monkeypatch):
    analyze_module = sys.modules["vocabx.analyze"]  # (vocabx.analyze is also the function's name)
    domain = _filler(20, "zorblax kidney stone zorblax")
    general = [f"The weather in the park was fine and the kidney beans were cheap, day {i}." for i in range(30)]
    result = analyze(domain, tok, holdout=None, reference=general)
    report = result.report
    curve = report["reference_curve"]
    assert curve and curve[-1]["n"] == len(result.candidates) and report["reference"]["projected_docs"] == 30
    assert report["recommended"]["reference_fraction"] == next(p["fraction"] for p in curve if p["n"] == report["recommended_n"])
    assert all(0 <= p["fraction"] < 1 for p in curve)
    monkeypatch.setattr(analyze_module, "_REFERENCE_SAMPLE_CHARS", len(general[0]) * 5)
    capped = analyze(domain, tok, holdout=None, reference=general).report
    assert capped["reference"]["projected_docs"] == 5 and capped["reference"]["docs"] == 30
    assert analyze(domain, tok, holdout=None).report["reference_curve"] is None


# ---------------------------------------------------------------------------------------------------
# The real model on the project's sample corpus


@pytest.mark.slow
def test_held_out_projection_matches_the_real_extended_tokenizer_on_legal(smollm2_tokenizer):
    from vocabx.corpus import read_corpus

    texts = list(read_corpus([str(LEGAL)]))
    result = analyze(texts, smollm2_tokenizer, holdout=0.1, seed=0)
    report = result.report
    projected = report["holdout_curve"][-1]["fraction"]
    assert report["holdout_curve"][-1]["n"] == len(result.candidates) > 500

    train, held = split_holdout(texts, 0.1, 0)
    train = list(train)
    assert len(held) == report["holdout"]["docs"] > 0
    ext, added, dropped = extend_tokenizer(smollm2_tokenizer, tokens_from_report(report))
    assert not dropped
    base = sum(len(ids) for ids in smollm2_tokenizer(held, add_special_tokens=False)["input_ids"])
    extended = sum(len(ids) for ids in ext(held, add_special_tokens=False)["input_ids"])
    assert base == report["holdout"]["tokens"]
    real = 1 - extended / base
    assert real > 0.2
    assert abs(projected - real) <= 0.015, (projected, real)


@pytest.mark.slow
def test_reference_projection_matches_the_real_extended_tokenizer_on_general_text(smollm2_tokenizer):
    from vocabx.corpus import read_corpus

    texts = list(read_corpus([str(LEGAL)]))
    general = list(read_corpus([str(ROOT / "corpora" / "general")]))
    result = analyze(texts, smollm2_tokenizer, holdout=None, reference=general)
    curve = result.report["reference_curve"]
    assert curve[-1]["n"] == len(result.candidates) > 100 and result.report["reference"]["projected_docs"] == len(general)
    ext, added, dropped = extend_tokenizer(smollm2_tokenizer, tokens_from_report(result.report))
    assert not dropped
    base = sum(len(ids) for ids in smollm2_tokenizer(general, add_special_tokens=False)["input_ids"])
    extended = sum(len(ids) for ids in ext(general, add_special_tokens=False)["input_ids"])
    assert base == result.report["reference"]["tokens"]
    assert 0 < curve[-1]["fraction"] and abs(curve[-1]["fraction"] - (1 - extended / base)) <= 0.002, (curve[-1], 1 - extended / base)


OVERLAPPING = [
    "In accordance with the terms of this Agreement, the Distributor shall be bound by the terms of this Agreement.",
    "The terms of this Agreement shall be read in accordance with the law; in accordance with the terms of the law.",
    "Each party shall be bound by the terms of the Agreement and shall act in accordance with this Agreement.",
    "The Distributor shall be liable in accordance with the terms of this Agreement and the terms of the law.",
]


@pytest.mark.parametrize("max_phrase_words", [2, 3, 4])
def test_overlaps_pushed_from_the_counters_table_rank_what_looking_them_up_ranks(space, monkeypatch, max_phrase_words):
    # With the counter's table, each chosen phrase pushes its overlaps (found among the n-grams that start
    # or end with it) to the phrases it overlaps; without it, each phrase looks the unions up. Same ranking,
    # savings included, on text where the chosen phrases overlap each other a lot.
    selection = importlib.import_module("vocabx.analyze.selection")

    texts = [f"{a} {b}" for a in OVERLAPPING for b in OVERLAPPING]
    counts = count_corpus(texts, space, max_phrase_words=max_phrase_words)
    chosen_settings = SelectSettings(min_count=2, min_docs=2, max_phrase_words=max_phrase_words, kinds=("phrase",))
    pushed, model = select_candidates(counts, space, chosen_settings)
    assert model._overlaps is not None
    monkeypatch.setattr(selection._OverlapIndex, "fits", staticmethod(lambda table: False))
    looked_up, plain = select_candidates(counts, space, chosen_settings)
    assert plain._overlaps is None
    assert [c.as_dict() for c in pushed] == [c.as_dict() for c in looked_up]
    phrases = [tuple(c.parts) for c in pushed]
    overlaps = [(p, q) for p in phrases for q in phrases if p != q and any(p[-k:] == q[:k] for k in range(1, min(len(p), len(q))))]
    assert len(phrases) >= 5 and overlaps  # (the case this checks: chosen phrases that overlap)


def _table_without(table, drop):
    """A copy of a counter's phrase table without the rows in ``drop`` (as if the counter had pruned them)."""
    import numpy as np

    selection = importlib.import_module("vocabx.analyze.selection")
    keep = np.setdiff1d(np.arange(len(table.keys)), drop)
    out = object.__new__(type(table))
    for name in type(table).__slots__:
        setattr(out, name, getattr(table, name))
    out.keys = [table.keys[r] for r in keep.tolist()]
    out.count, out.docs, out.length, out.matrix = table.count[keep], table.docs[keep], table.length[keep], table.matrix[keep]
    witness = object.__new__(type(table.witness))
    witness.__dict__.update(table.witness.__dict__)
    witness.hashes, witness.length = table.witness.hashes[keep], table.witness.length[keep]
    out.witness = witness
    assert selection._OverlapIndex.fits(out)
    return out


def test_overlap_index_finds_each_n_grams_parts_by_hash_as_a_lookup_of_their_words_does(space):
    # prefix[j][row] / suffix[j][row]: the row of the row's phrase less its last / first j words, from the
    # counter's hashes; checked against looking the words up, also where a part is missing from the table
    # (the parent's parent is then looked up, not taken as missing).
    selection = importlib.import_module("vocabx.analyze.selection")

    texts = [f"{a} {b}" for a in OVERLAPPING for b in OVERLAPPING]
    counts = count_corpus(texts, space, max_phrase_words=4)
    full = counts.phrase_table
    assert full is not None and selection._OverlapIndex.fits(full)
    # drop some 3-word rows that are prefixes or suffixes of longer rows: their 2-word parts remain
    parts_of_longer = {k[:3] for k in full.keys if len(k) >= 5} | {k[-3:] for k in full.keys if len(k) >= 5}
    drop = [r for r, k in enumerate(full.keys) if k in parts_of_longer][::3]
    assert drop
    for table in (full, _table_without(full, drop)):
        row_of = {k: r for r, k in enumerate(table.keys)}
        prefix, suffix = selection._OverlapIndex.parents(table)
        checked = 0
        for r, key in enumerate(table.keys):
            for j in (1, 2, 3):
                want_pre = row_of.get(key[:-j], -1) if len(key) - j >= 2 else -1
                want_suf = row_of.get(key[j:], -1) if len(key) - j >= 2 else -1
                assert (int(prefix[j][r]), int(suffix[j][r])) == (want_pre, want_suf), (key, j)
                checked += want_pre >= 0
        assert checked > 100
    pruned = set(_table_without(full, drop).keys)  # (the case of the look-up: a longer row whose part is gone)
    assert any(len(k) >= 5 and k[:3] not in pruned for k in pruned)


def test_gain_heap_pops_what_the_score_heap_pops_when_each_score_is_its_gain():
    # The unweighted selection's heap keeps one int per entry; it must pop in the tuple heap's order:
    # highest gain first, equal gains in the order they entered, whether entered, extended or pushed.
    import random

    selection = importlib.import_module("vocabx.analyze.selection")
    rng = random.Random(0)
    ints, tuples = selection._GainHeap(), selection._ScoreHeap()
    first = [rng.choice([1, 2, 3, 7, 10**12]) for _ in range(300)]
    for i, g in enumerate(first[:100]):
        ints.enter(float(g), g, f"w{i}")
        tuples.enter(float(g), g, f"w{i}")
    ints.extend(first[100:], [f"s{i}" for i in range(200)])
    for i, g in enumerate(first[100:]):
        tuples.enter(float(g), g, f"s{i}")
    ints.heapify()
    tuples.heapify()
    popped = []
    while tuples:
        assert ints and ints.top() == tuples.top()
        a, b = ints.pop(), tuples.pop()
        assert a == b
        popped.append(a)
        if rng.random() < 0.3:  # re-pushed with a lower gain, as a stale entry is
            g = rng.choice([1, 2, 3])
            ints.push(float(g), g, a + "'")
            tuples.push(float(g), g, a + "'")
    assert not ints and len(popped) > 300 and popped[0] == f"w{first.index(10**12)}"


def test_examples_found_by_the_worker_process_are_the_ones_found_inline(space, monkeypatch):
    counting, finder = (importlib.import_module(f"vocabx.analyze.{m}") for m in ("counting", "examples"))

    texts = MIXED * 4 + [f"{a} {b}" for a in OVERLAPPING for b in OVERLAPPING]
    for module in (counting, finder):
        monkeypatch.setattr(module, "usable_cores", lambda: 1)
    inline = analyze(texts, space.backend, holdout=None, settings=SelectSettings(min_docs=1, min_count=2))
    for module in (counting, finder):
        monkeypatch.setattr(module, "usable_cores", lambda: 2)
    monkeypatch.setattr(finder, "_EXAMPLES_IN_WORKER_CHARS", 0)
    monkeypatch.setattr(finder._Examples, "CHUNK", 3)  # several chunks
    started = []
    real_start = finder._Examples.start.__func__

    def start(cls, workers=None):
        out = real_start(cls, workers)
        started.append(out.process is not None)
        return out

    monkeypatch.setattr(finder._Examples, "start", classmethod(start))
    in_worker = analyze(texts, space.backend, holdout=None, settings=SelectSettings(min_docs=1, min_count=2))
    if sys.platform.startswith("linux"):
        assert started == [True]
    examples = [c.example for c in inline.candidates]
    assert len(examples) > 10 and all(examples)
    assert [c.example for c in in_worker.candidates] == examples


def _late_terms() -> list[str]:
    """420 documents of filler, then ten that hold a word, a phrase and a subword found nowhere before."""
    return ["Of, the kidney stone."] * 420 + [f"Ok, zorblax; renal calculi; {w}." for w in ITIS[:10]]


@pytest.mark.parametrize("holdout", [None, 0.2])
def test_every_candidate_gets_an_example_also_past_the_first_documents(space, holdout):
    texts = _late_terms()
    result = analyze(iter(texts), space.backend, holdout=holdout, settings=SelectSettings(min_count=3))
    by_token = {c.token: c for c in result.candidates}
    assert {"Ġzorblax", "ĠrenalĠcalculi", "itis"} <= set(by_token)
    for cand in result.candidates:
        assert cand.surface in cand.example, cand
    assert by_token["Ġzorblax"].example == "Ok, zorblax; renal calculi; gastritis." or holdout
    assert not any("candidates have no example" in n for n in result.report["notes"])


def test_examples_past_the_kept_text_are_left_out_with_a_note(space, monkeypatch):
    finder = importlib.import_module("vocabx.analyze.examples")
    monkeypatch.setattr(finder, "_KEPT_CHARS", 400 * len("Of, the kidney stone."))
    result = analyze(_late_terms(), space.backend, holdout=None, settings=SelectSettings(min_count=3))
    missing = [c.token for c in result.candidates if not c.example]
    assert "Ġzorblax" in missing and "Ġkidney" not in missing
    assert f"{len(missing)} candidates have no example: examples come from the first 8,400 characters of the corpus" in result.report["notes"]


def test_examples_are_found_here_when_the_worker_is_gone(space):
    finder = importlib.import_module("vocabx.analyze.examples")

    docs = ["the kidney stone", "in accordance with the terms"]
    examples = finder._Examples.start(workers=2)
    if examples.process is not None:
        examples.process.kill()
        examples.process.join()
    examples.begin(docs, min_chars=0)
    for surface in (" kidney", " terms", " absent"):
        examples.surfaces.append(surface)
    assert examples.result() == ["the kidney stone", "in accordance with the terms", ""]
    examples.close()


def test_a_daemonic_process_counts_and_finds_examples_without_forking(space):
    # A multiprocessing pool's worker may not have children: analyze there runs in one process.
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method")
    texts = MIXED * 4 + [f"{a} {b}" for a in OVERLAPPING for b in OVERLAPPING]
    here = analyze(texts, space.backend, holdout=None, settings=SelectSettings(min_docs=1, min_count=2))
    with multiprocessing.get_context("fork").Pool(1) as pool:
        there = pool.apply(_analyze_in_daemon, (texts, space.backend))
    assert there == [(c.token, c.tokens_saved, c.example) for c in here.candidates]


def _analyze_in_daemon(texts, backend):
    import multiprocessing

    assert multiprocessing.current_process().daemon
    result = analyze(texts, backend, holdout=None, settings=SelectSettings(min_docs=1, min_count=2))
    return [(c.token, c.tokens_saved, c.example) for c in result.candidates]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_the_counting_map_is_lazy_in_order_and_only_a_few_items_ahead(workers):
    """The n-gram lengths' arrays are made only as the grouping threads can take them: the map pulls
    at most ``workers`` items beyond the one whose result the consumer reads, and keeps the order."""

    counting = importlib.import_module("vocabx.analyze.counting")
    pulled = []  # (the items are made in the consumer's thread, as the map pulls them)

    def items():
        for i in range(10):
            pulled.append(i)
            yield (i,)

    with counting._thread_map(workers) as mapped:
        results = mapped(lambda i: i * i, items())
        assert pulled == []  # (nothing made before the first result is asked for)
        seen = []
        for k, value in enumerate(results):
            assert len(pulled) <= k + 1 + (workers if workers >= 2 else 0)
            seen.append(value)
    assert seen == [i * i for i in range(10)] and pulled == list(range(10))


@pytest.mark.parametrize("workers", [1, 2])
def test_first_documents_are_each_words_first_documents_across_batches_and_split_halves(_tiny_tokenizers, workers):
    from vocabx.analyze.space import TokenSpace

    tokenizer = _tiny_tokenizers["byte_bpe"]
    rng = random.Random(7)
    vocab = [f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(300)]
    texts = [" ".join(rng.choice(vocab[: rng.choice((5, 300))]) for _ in range(rng.randint(1, 30))) for _ in range(3000)]
    space = TokenSpace.of(tokenizer)
    # (small batches: several of them, the first split in halves by two processes when workers is 2)
    counts = count_corpus(texts, space, workers=workers, batch_bytes=20_000, keep_docs=3)
    pre = tokenizer.backend_tokenizer.pre_tokenizer
    want: dict[str, list[int]] = {}
    for d, text in enumerate(texts):
        for word in dict.fromkeys(w for w, _ in pre.pre_tokenize_str(text)):
            docs = want.setdefault(word, [])
            if len(docs) < 3:
                docs.append(d)
    assert {w: list(counts.first_docs.of(w)) for w in want} == want


def test_allowed_answers_ascii_text_as_the_per_character_rule_does():
    # _allowed matches ASCII with one pattern; it must agree with the rule it stands for (no space or
    # control character, a letter, digits only where allowed) on every ASCII body of up to two characters.
    import itertools
    import unicodedata

    space_module = importlib.import_module("vocabx.analyze.space")

    def rule(surface: str, allow_digits: bool) -> bool:
        body = surface[1:] if surface.startswith(" ") else surface
        return bool(body) and any(ch.isalpha() for ch in body) and not any(
            ch.isspace() or unicodedata.category(ch)[0] == "C" or (ch.isdigit() and not allow_digits) for ch in body
        )

    chars = [chr(i) for i in range(128)]
    bodies = [""] + chars + ["".join(pair) for pair in itertools.product(chars, repeat=2)]
    for body in bodies:
        for surface in (body, " " + body):
            for allow_digits in (True, False):
                assert space_module._allowed(surface, allow_digits) == rule(surface, allow_digits), (surface, allow_digits)
    assert space_module._allowed(" Agreement", False) and not space_module._allowed(" 2024", False)
