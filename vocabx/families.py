"""Extend SentencePiece-style BPE, Unigram and WordPiece tokenizers with real vocabulary entries.

:func:`extend_spec` edits a tokenizer.json dict so that new tokens are entries of the tokenizer's own model
(never added tokens) and returns ``(spec, added, dropped)`` like the byte-level extender in
:mod:`vocabx.extend`. New ids start after the largest id in use. Each family gets the mechanism that keeps
the guarantees of DESIGN.md, and each mechanism says exactly where a new token fires.

**SentencePiece-style BPE** (Llama-2, Mistral: spaces become ``▁``, nothing splits words, byte fallback):

- ``word`` (``▁hepatosplenomegaly``) and ``phrase`` (``▁of▁the``): a vocabulary entry, an alternative in a
  ``Split`` pre-tokenizer appended after the existing one, and BPE ``ignore_merges``, so the isolated
  pre-token is looked up whole. The entry fires exactly where the text (after the normalizer) holds
  ``▁W`` such that (a) the character before that ``▁`` is the start of the text segment or a character
  ``c`` for which no base token contains ``c▁``, and (b) the character after ``W`` is the end of the
  segment, or is no letter, mark or digit and, with ``W``'s last character ``l``, no base token contains
  ``l`` followed by it. No base token can then span either cut, so BPE cuts the rest of the text into
  the base tokens (or fewer, where ``ignore_merges`` finds a whole remaining piece in the vocabulary) and
  the entry replaces the two or more tokens of ``▁W``: never longer, lossless. By (b)
  it never fires when a letter follows, and it always starts at a space: no partial-word match.
  Where (b) fails (in the tiny test tokenizer ``y.`` is inside a token, so ``▁…y`` does not fire before
  a full stop) the base tokens are kept.
  A chain of merges building ``▁W`` from its pieces was rejected: BPE merges cannot look at the next
  character, so the chain also fires in ``▁Ws`` whenever ``▁Ws``'s base pieces start with ``▁W``'s,
  which is the usual case; the checker would then drop nearly every word.
- ``subword``: a merge appended after all base merges, as for byte-level BPE. It applies only once no
  base merge does, and no base merge involves the new token, so it can only join base tokens: never
  longer, lossless.

**Unigram** (T5, XLM-R: ``Metaspace`` pre-tokenizer splitting at spaces):

- ``word`` ``▁W``: the piece ``▁W`` + U+FDD0 (a Unicode noncharacter, :data:`SENTINEL`), a ``Replace``
  normalizer that inserts U+FDD0 right after ``W`` where ``W`` is a whole pre-token (a space or, when the
  pre-tokenizer prepends ``▁`` everywhere, the segment start before it; a space or the segment end after
  it), and a decoder step that removes U+FDD0. A piece ``▁W`` alone would be usable wherever the string
  occurs: the best path of ``▁Ws`` is usually that of ``▁W`` plus ``s``, so any score that makes the
  piece win on ``▁W`` makes it win inside ``▁Ws`` too, and a score above the pieces it replaces can
  also make Viterbi prefer a path with more pieces elsewhere. With the marker the piece matches only
  its own pre-token ``▁W``U+FDD0, where every other path must cover U+FDD0 with ``<unk>`` (score
  ``lowest - 10``). Its score is the sum of the scores of ``▁W``'s base pieces (their joint
  log-probability), so the one-piece path wins by at least that ``<unk>`` penalty, floored at the
  lowest existing score: the lattice derives the ``<unk>`` penalty from the lowest score, and a new
  lower one would change it for every text. No other pre-token changes. It fires on the whole
  pre-token only.
- ``subword`` and ``phrase``: dropped. Unigram has no merges, and a piece usable anywhere cannot be shown
  never to lengthen a text; Metaspace splits phrases apart.

**WordPiece** (BERT: normalizer, ``BertPreTokenizer``, greedy longest-match-first):

- ``word`` ``W``: the entry ``W`` + U+FDD0, with the same normalizer and decoder steps, U+FDD0 inserted
  where ``W`` is a whole pre-token of the normalized text (start, whitespace or punctuation on both
  sides). A plain ``W`` entry would be the longest prefix of ``Wx`` and fire there
  (``hepatosplenomegaly`` + ``##x``); with the marker the entry fires on the whole pre-token only, so
  guarantee 3 keeps its byte-level meaning and the checker's glued probes apply unchanged. BERT's
  normalizer pads CJK ideographs with spaces, so ``W`` glued to one (``患者W``) is a whole pre-token to
  BERT, but a letter touches ``W`` in the text; the marker is not inserted there (one space between the
  ideograph and ``W`` after normalizing means they touched). A combining mark that the normalizer
  strips (``W`` + U+0301) leaves ``W`` whole, and the entry fires: the tokenizer cannot tell them apart.
- ``subword``: a ``##`` continuation entry (``##omegaly`` from ``##omeg`` + ``##aly``) or a word-initial
  prefix (``car`` from ``c`` + ``##ar``), kept only when greedy matching provably cuts no word into
  more tokens (:func:`_greedy_problem`): where the entry fires the base would have taken a shorter match
  and gone on inside the entry's span; if no base entry reaches past the span's end from any position of
  that path, the base cuts exactly where the entry ends and the rest of the word is cut as before. Other
  subwords are dropped: on the tiny test tokenizer an unchecked ``##nif`` (``##ni`` + ``##f``) cut
  ``eretnifustandin`` into 7 tokens where the base takes 6 (``##ni`` ``##fu`` ``##standin``).
- ``phrase``: dropped; the pre-tokenizer removes the spaces a phrase would span.

U+FDD0 in the input itself is first replaced by another noncharacter that no entry holds, so it stays an
unknown character exactly as in the base and never matches a marked entry. Only a Unigram model with byte
fallback, which would have round-tripped it, decodes it as that other noncharacter. Unicode reserves
noncharacters for internal use, which is why one is the marker; a vocabulary that already holds U+FDD0
gets no word entries.

What it leaves out: byte-level BPE (:mod:`vocabx.extend`), checking the guarantees (:mod:`vocabx.check`),
and other tokenizer models (WordLevel), which are an error. A BPE model without the ``▁`` layout (one with
``end_of_word_suffix``, say) gets appended merges for subwords and drops words, with the reason.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from vocabx.errors import VocabxError

SENTINEL = "\ufdd0"
"""Marks a word entry of a Unigram or WordPiece tokenizer; inserted by the normalizer, removed on decode."""

PHRASES_BYTE_LEVEL_ONLY = "phrases are supported for byte-level BPE only"
_MARKER = "▁"
_WORD_CHAR = r"\p{L}\p{M}\p{N}"
# BertPreTokenizer splits at whitespace and at punctuation (Unicode P* and all ASCII punctuation).
_BERT_SPLIT = r"\p{White_Space}\p{P}\x{21}-\x{2F}\x{3A}-\x{40}\x{5B}-\x{60}\x{7B}-\x{7E}"
# The CJK ideograph blocks BertNormalizer surrounds with spaces.
_CJK = r"\x{3400}-\x{4DBF}\x{4E00}-\x{9FFF}\x{F900}-\x{FAFF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2CEAF}\x{2F800}-\x{2FA1F}"
# A regex comment that names vocabx's Split for someone reading tokenizer.json.
_SPLIT_TAG = "(?#vocabx-words)"
_MARKER_TAKEN = "the vocabulary already uses U+FDD0, the character that marks word entries"


def extend_spec(spec: dict, new: list, space: Any) -> tuple[dict, list[dict], list[dict]]:
    """Add ``new`` (NewToken) to a tokenizer.json dict of ``space.family``; returns (spec, added, dropped).

    ``spec`` is edited in place. ``added``: {token, surface, kind, id, source}, plus ``entry`` (the string
    stored in the vocabulary) where it differs from ``token`` and ``merge`` for a BPE subword;
    ``dropped``: {token, surface, kind, reason}.
    """
    extenders = {"sp_bpe": _extend_sp_bpe, "unigram": _extend_unigram, "wordpiece": _extend_wordpiece}
    extender = extenders.get(space.family)
    if extender is None:
        raise VocabxError(
            f"cannot extend a {space.family!r} tokenizer; vocabx extends byte-level BPE, SentencePiece-style BPE, "
            "Unigram and WordPiece tokenizers"
        )
    return extender(spec, new, space)


# ---------------------------------------------------------------------------------------------------
# Bookkeeping shared by the families


class _Batch:
    """Ids in order, what was added and what was dropped, and the strings already taken."""

    def __init__(self, spec: dict, taken: set[str]):
        self.next_id = _next_id(spec)
        self.taken = taken | {t["content"] for t in spec.get("added_tokens", [])}
        self.added: list[dict] = []
        self.dropped: list[dict] = []
        self._new: set[str] = set()

    def screen(self, item: Any) -> str | None:
        """The problems every family shares: kind, emptiness, the marker, tokens already there."""
        if item.kind not in ("word", "subword", "phrase"):
            return f"unknown kind {item.kind!r}"
        if not item.token or SENTINEL in item.token:
            return "empty, or holds the marker U+FDD0"
        if item.token in self._new:
            return "duplicate of an earlier candidate"
        if item.token in self.taken:
            return "already in the vocabulary"
        return None

    def drop(self, item: Any, reason: str) -> None:
        self.dropped.append({"token": item.token, "surface": item.surface, "kind": item.kind, "reason": reason})

    def add(self, item: Any, entry: str, merge: list[str] | None = None) -> int:
        """Record ``item`` under the next id; ``entry`` is the string stored, ``merge`` a BPE merge's parts."""
        new_id = self.next_id
        self.next_id += 1
        self._new.add(item.token)
        record = {"token": item.token, "surface": item.surface, "kind": item.kind, "id": new_id, "source": item.source}
        if entry != item.token:
            record["entry"] = entry
        if merge is not None:
            record["merge"] = list(merge)
        self.added.append(record)
        return new_id


def _next_id(spec: dict) -> int:
    """One past the largest id of the model's vocabulary and of the added tokens."""
    vocab = spec["model"]["vocab"]
    ids = list(vocab.values()) if isinstance(vocab, dict) else [len(vocab) - 1]
    ids += [t["id"] for t in spec.get("added_tokens", [])]
    return max(ids, default=-1) + 1


def fill_holes(vocab: dict[str, int], spec: dict) -> None:
    """Give the ids below the largest one that the vocabulary lacks to the added tokens holding them.

    ``tokenizers`` does not read an added token's id from tokenizer.json: it takes the model's id for the
    same string, else the next id after the model's vocabulary size, its number of entries. With the
    added tokens (Llama-3's and Qwen2's specials, a user's ``add_tokens``) right after the base vocabulary
    and new entries after them, the added tokens would load with the new entries' ids. As entries of the
    model too, they keep their ids (no merge builds them; the added vocabulary matches them first).
    """
    holders = {t["id"]: t["content"] for t in spec.get("added_tokens", [])}
    used = set(vocab.values())
    for i in range(max(used, default=-1)):
        if i not in used:
            vocab.setdefault(holders.get(i, f"<vocabx unused {i}>"), i)


def _merge_problem(item: Any, vocab: Any, right_prefix: str = "") -> str | None:
    """Why a subword's two parts cannot be joined into it (None when they can)."""
    merge = item.merge
    if not merge or len(merge) != 2 or not merge[1].startswith(right_prefix):
        return "subword without a valid merge"
    if merge[0] + merge[1][len(right_prefix) :] != item.token:
        return "subword without a valid merge"
    missing = [part for part in merge if part not in vocab]
    if missing:
        return f"its merge needs {missing[0]!r}, which was not added"
    return None


def _steps(component: dict | None, key: str) -> list[dict]:
    """The steps of a normalizer, pre-tokenizer or decoder: a Sequence's list, [it] alone, [] for none."""
    if component is None:
        return []
    return list(component[key]) if component.get("type") == "Sequence" else [component]


def _with_decoder_step(decoder: dict | None) -> dict:
    """The decoder with a first step that removes the marker (once, however often extended)."""
    remove = {"type": "Replace", "pattern": {"String": SENTINEL}, "content": ""}
    steps = _steps(decoder, "decoders")
    if remove not in steps:
        steps.insert(0, remove)
    return {"type": "Sequence", "decoders": steps}


def _with_marker_normalizer(normalizer: dict | None, pattern: str, stand_in: str) -> dict:
    """The normalizer followed by the marker steps, replacing those of a previous extension.

    A U+FDD0 already in the input becomes ``stand_in``, another noncharacter no entry holds, so that only
    the inserted markers can match a marked entry; the input's own noncharacter stays unknown as before.
    """
    steps = [s for s in _steps(normalizer, "normalizers") if not _is_marker_step(s)]
    steps.append({"type": "Replace", "pattern": {"String": SENTINEL}, "content": stand_in})
    steps.append({"type": "Replace", "pattern": {"Regex": pattern}, "content": SENTINEL})
    return {"type": "Sequence", "normalizers": steps}


def _is_marker_step(step: dict) -> bool:
    return step.get("type") == "Replace" and SENTINEL in (step.get("content"), step.get("pattern", {}).get("String"))


def _stand_in(strings: Any) -> str | None:
    """A noncharacter (U+FDD1..U+FDEF) that no vocabulary string holds; None when the vocabulary uses U+FDD0.

    Marked entries (ending in U+FDD0) are ours and do not count.
    """
    used = {ch for s in strings for ch in (s[: -len(SENTINEL)] if s.endswith(SENTINEL) else s)}
    if SENTINEL in used:
        return None
    return next((chr(c) for c in range(0xFDD1, 0xFDF0) if chr(c) not in used), None)


def _marker_pattern(words: list[str], before: str, at_start: bool, padded: str = "") -> str:
    """A zero-width regex matching right after any of ``words`` when it stands between ``before`` chars.

    (['hepato', 'hepatosplenomegaly'], '[ ]', True) matches after 'hepato' in 'a hepato b' but not in
    'a hepatos b'. The cheap look-arounds come first, so the word trie is only tried at word ends.
    ``padded``: a class of characters the normalizer surrounds with spaces (BERT's CJK ideographs). One
    space between such a character and the word means they touched in the input: no match there.
    """
    start = rf"(?:\A|[{before}])" if at_start else f"[{before}]"
    trie = _alternation(words)
    pattern = rf"(?![^{before}])(?<=[^{before}])(?<={start}{trie})"
    if padded:
        pattern = rf"(?! [{padded}]){pattern}(?<![{padded}] {trie})"
    return pattern


def _alternation(words: list[str]) -> str:
    """A trie-shaped regex for a set of literal strings, longer ones tried first.

    ['hep', 'hepato', 'hex'] -> 'he(?:p(?:ato|)|x)'
    """
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}
    return _trie_regex(trie)


def _trie_regex(node: dict) -> str:
    branches = [_literal(ch) + _trie_regex(child) for ch, child in sorted(node.items()) if ch]
    if "" in node:
        branches.append("")  # a word ends here; last, so that longer words are tried first
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")"


def _literal(ch: str) -> str:
    # Every ASCII character that is not a letter or digit may be a regex operator; the rest are literal.
    return f"\\x{{{ord(ch):X}}}" if ch.isascii() and not ch.isalnum() else ch


def _char_class(chars: set[str]) -> str:
    return "[" + "".join(f"\\x{{{ord(ch):X}}}" for ch in sorted(chars)) + "]"


# ---------------------------------------------------------------------------------------------------
# SentencePiece-style BPE


def _extend_sp_bpe(spec: dict, new: list, space: Any) -> tuple[dict, list[dict], list[dict]]:
    model = spec["model"]
    vocab: dict[str, int] = model["vocab"]
    merges: list = model["merges"]
    merge_as_list = bool(merges) and isinstance(merges[0], list)
    batch = _Batch(spec, set(vocab))
    layout = _sp_layout_problem(model, space)
    whole: list[str] = []
    for item in new:
        reason = batch.screen(item)
        if reason is None and item.kind == "subword":
            reason = _merge_problem(item, vocab)
        elif reason is None:
            reason = layout or _sp_whole_problem(item)
        if reason:
            batch.drop(item, reason)
            continue
        vocab[item.token] = batch.add(item, item.token, item.merge if item.kind == "subword" else None)
        if item.kind == "subword":
            merges.append(list(item.merge) if merge_as_list else " ".join(item.merge))
        else:
            whole.append(item.token)
    if batch.added:
        fill_holes(vocab, spec)
    if whole:
        # The cuts must be safe for the tokens of the tokenizer being extended, not for the new ones.
        specials = {t["content"] for t in spec.get("added_tokens", [])}
        pattern = _sp_split_pattern(whole, [t for t in space.vocab if t not in specials and not _is_byte_piece(t)])
        split = {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False}
        spec["pre_tokenizer"] = _appended(spec.get("pre_tokenizer"), split)
        # The isolated pre-token is then looked up whole; no merge builds the new entry.
        model["ignore_merges"] = True
    return spec, batch.added, batch.dropped


def _sp_layout_problem(model: dict, space: Any) -> str | None:
    """Why word entries cannot be isolated in this tokenizer (None when they can)."""
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return "word entries need a BPE model without continuing_subword_prefix or end_of_word_suffix"
    if "▁b" not in _model_text(space.backend, "a b"):
        return "word entries need spaces written as '▁' before the BPE model (SentencePiece layout)"
    return None


def _model_text(backend: Any, text: str) -> str:
    """The text as the model sees it, after the normalizer and the pre-tokenizer, joined: 'a b' -> '▁a▁b'."""
    if backend.normalizer is not None:
        text = backend.normalizer.normalize_str(text)
    if backend.pre_tokenizer is not None:
        text = "".join(piece for piece, _ in backend.pre_tokenizer.pre_tokenize_str(text))
    return text


def _sp_whole_problem(item: Any) -> str | None:
    """'▁hepatosplenomegaly' and '▁of▁the' are fine; '▁▁x', 'x▁', 'of' are not."""
    words = item.token.split(_MARKER)
    if words[0] != "" or any(not w or any(ch.isspace() for ch in w) for w in words[1:]):
        return "a word or phrase entry starts with '▁' and joins non-empty words with single '▁'"
    if item.kind == "word" and len(words) != 2:
        return "a word entry holds one '▁', at its start; use kind 'phrase' for several words"
    if item.kind == "phrase" and len(words) < 3:
        return "a phrase entry joins at least two words"
    if item.surface.replace(" ", _MARKER) != item.token:
        return f"surface {item.surface!r} does not match the token"
    return None


def _is_byte_piece(token: str) -> bool:
    """'<0x0A>' -> True: byte-fallback pieces stand for bytes, not for the characters they are spelled with."""
    return len(token) == 6 and token.startswith("<0x") and token.endswith(">")


def _sp_split_pattern(whole: list[str], base_tokens: list[str]) -> str:
    """The regex isolating the new entries where no base token crosses either cut (see the module docstring).

    (['▁hepatomegaly'], tokens containing 'y.' and 'a▁') -> '(?<![a])▁hepatomegaly(?![letters]|(?<=y)[.])'
    """
    follows: dict[str, set[str]] = defaultdict(set)
    for token in base_tokens:
        for left, right in zip(token, token[1:]):
            follows[left].add(right)
    before = {left for left, rights in follows.items() if _MARKER in rights}
    after = []
    for last in sorted({token[-1] for token in whole}):
        unsafe = {ch for ch in follows.get(last, ()) if not _is_word_char(ch)}
        if unsafe:
            after.append(f"(?<={_literal(last)}){_char_class(unsafe)}")
    lookbehind = f"(?<!{_char_class(before)})" if before else ""
    lookahead = "(?!" + "|".join([f"[{_WORD_CHAR}]"] + after) + ")"
    return f"{_SPLIT_TAG}{lookbehind}{_alternation(whole)}{lookahead}"


def _is_word_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LMN"


def _appended(pre: dict | None, split: dict) -> dict:
    """The pre-tokenizer followed by ``split``; an earlier vocabx split stays, as each cut it makes is safe."""
    if pre is None:
        return split
    return {"type": "Sequence", "pretokenizers": _steps(pre, "pretokenizers") + [split]}


# ---------------------------------------------------------------------------------------------------
# Unigram


@dataclass
class _Layout:
    """Where a pre-token starts and ends: ``before`` is a regex class body, ``at_start`` the segment start."""

    before: str
    at_start: bool


def _extend_unigram(spec: dict, new: list, space: Any) -> tuple[dict, list[dict], list[dict]]:
    model = spec["model"]
    pieces: list = model["vocab"]
    index = {piece: i for i, (piece, _) in enumerate(pieces)}
    batch = _Batch(spec, set(index) | {p[: -len(SENTINEL)] for p in index if p.endswith(SENTINEL)})
    layout = _unigram_layout(spec.get("pre_tokenizer"))
    stand_in = _stand_in(index)
    if stand_in is None:
        layout = _MARKER_TAKEN
    score_of, floor = _score_function(model, pieces)
    fresh = []
    for item in new:
        reason = batch.screen(item)
        if reason is None and item.kind == "subword":
            reason = "subwords are BPE merges; a Unigram piece usable anywhere could make texts longer"
        elif reason is None and item.kind == "phrase":
            reason = PHRASES_BYTE_LEVEL_ONLY
        elif reason is None:
            reason = layout if isinstance(layout, str) else _marked_word_problem(item, space, _MARKER)
        if reason:
            batch.drop(item, reason)
            continue
        entry = item.token + SENTINEL
        # Never below the lowest score: the lattice's <unk> penalty is that score minus 10 for every text.
        score = max(sum(score_of(p) for p in space.pieces(item.token)), floor)
        fresh.append((batch.add(item, entry), [entry, score]))
    if fresh:
        _pad_to(pieces, fresh[0][0], spec, floor)
        pieces.extend(piece for _, piece in fresh)
        words = [p[len(_MARKER) : -len(SENTINEL)] for p, _ in pieces if p.endswith(SENTINEL)]
        assert isinstance(layout, _Layout) and stand_in is not None
        pattern = _marker_pattern(words, layout.before, layout.at_start)
        spec["normalizer"] = _with_marker_normalizer(spec.get("normalizer"), pattern, stand_in)
        spec["decoder"] = _with_decoder_step(spec.get("decoder"))
    return spec, batch.added, batch.dropped


def _unigram_layout(pre: dict | None) -> _Layout | str:
    """Metaspace splitting at spaces, or WhitespaceSplit then Metaspace prepending '▁' to every word."""
    steps = _steps(pre, "pretokenizers")
    kinds = [s.get("type") for s in steps]
    meta = steps[kinds.index("Metaspace")] if kinds.count("Metaspace") == 1 else None
    problem = "word pieces need a Metaspace pre-tokenizer ('▁') that splits at spaces"
    if meta is None or meta.get("replacement", _MARKER) != _MARKER:
        return problem
    scheme = meta.get("prepend_scheme") or ("always" if meta.get("add_prefix_space", True) else "never")
    if kinds == ["Metaspace"] and meta.get("split", True):
        return _Layout(before=" ", at_start=scheme == "always")
    if kinds == ["WhitespaceSplit", "Metaspace"] and scheme == "always":
        return _Layout(before=r"\p{White_Space}", at_start=True)
    return problem


def _score_function(model: dict, pieces: list) -> tuple[Any, float]:
    """(piece -> score, the lowest score); ``<unk>`` scores what the lattice gives it: the lowest - 10."""
    scores = {piece: score for piece, score in pieces}
    unk_id = model.get("unk_id")
    unk = pieces[unk_id][0] if unk_id is not None and unk_id < len(pieces) else None
    lowest = float(min(scores.values()))

    def score_of(piece: str) -> float:
        return lowest - 10.0 if piece == unk or piece not in scores else float(scores[piece])

    return score_of, lowest


def _pad_to(pieces: list, first_id: int, spec: dict, score: float) -> None:
    """Unigram ids are list positions: fill the ids added tokens hold beyond the list with those tokens."""
    holders = {t["id"]: t["content"] for t in spec.get("added_tokens", [])}
    while len(pieces) < first_id:
        # A hole no added token holds gets a piece no text contains.
        pieces.append([holders.get(len(pieces), f"<vocabx unused {len(pieces)}>"), score])


def _marked_word_problem(item: Any, space: Any, prefix: str) -> str | None:
    """Why a word cannot get a marked entry: 'prefix' + a normalized word without spaces."""
    if not item.token.startswith(prefix) or len(item.token) == len(prefix):
        return f"a word entry of this tokenizer is {prefix!r} followed by the word"
    word = item.token[len(prefix) :]
    if _MARKER in word or any(ch.isspace() for ch in word):
        return "a word entry holds no space and no '▁' after its start"
    normalizer = space.backend.normalizer
    if normalizer is not None and normalizer.normalize_str(word) != word:
        return f"not in the tokenizer's normalized form ({normalizer.normalize_str(word)!r})"
    return None


# ---------------------------------------------------------------------------------------------------
# WordPiece


def _extend_wordpiece(spec: dict, new: list, space: Any) -> tuple[dict, list[dict], list[dict]]:
    model = spec["model"]
    vocab: dict[str, int] = model["vocab"]
    prefix = model.get("continuing_subword_prefix") or "##"
    longest = model.get("max_input_chars_per_word") or 100
    batch = _Batch(spec, set(vocab) | {t[: -len(SENTINEL)] for t in vocab if t.endswith(SENTINEL)})
    stand_in = _stand_in(vocab)
    base = sorted(vocab)
    layout = _wordpiece_layout_problem(space.backend.pre_tokenizer)
    words = False
    for item in new:
        reason = batch.screen(item)
        if reason is None and item.kind == "subword":
            reason = _merge_problem(item, vocab, prefix) or _greedy_problem(item.token, prefix, base)
        elif reason is None and item.kind == "phrase":
            reason = PHRASES_BYTE_LEVEL_ONLY
        elif reason is None:
            reason = _MARKER_TAKEN if stand_in is None else layout or _wordpiece_word_problem(item, space, prefix, longest)
        if reason:
            batch.drop(item, reason)
            continue
        entry = item.token + SENTINEL if item.kind == "word" else item.token
        vocab[entry] = batch.add(item, entry)
        words = words or item.kind == "word"
    if batch.added:
        fill_holes(vocab, spec)
    if words:
        marked = [t[: -len(SENTINEL)] for t in vocab if t.endswith(SENTINEL)]
        assert stand_in is not None
        padded = _CJK if _pads_cjk(space.backend.normalizer) else ""
        pattern = _marker_pattern(marked, _BERT_SPLIT, True, padded)
        spec["normalizer"] = _with_marker_normalizer(spec.get("normalizer"), pattern, stand_in)
        spec["decoder"] = _with_decoder_step(spec.get("decoder"))
    return spec, batch.added, batch.dropped


def _wordpiece_layout_problem(pre: Any) -> str | None:
    """Why marked word entries cannot fire with this pre-tokenizer (None when they can).

    The marker U+FDD0 is inserted before the whitespace or punctuation after a word; the pre-tokenizer must
    keep it with the word and split off the punctuation around it, as BertPreTokenizer does. ``Whitespace``
    (``\\w+|[^\\w\\s]+``) puts the marker with the punctuation that follows, so the entry never fires and
    the marker becomes an extra ``[UNK]``; ``WhitespaceSplit`` leaves punctuation inside the pre-token,
    where the marker would turn a whole word into ``[UNK]``.
    """
    for after in (".", " ", ",", "-", ")", ""):
        text = f"(ab{SENTINEL}{after}"
        pieces = [text] if pre is None else [piece for piece, _ in pre.pre_tokenize_str(text)]
        if f"ab{SENTINEL}" not in pieces:
            return (
                "word entries need a pre-tokenizer that splits at whitespace and punctuation and keeps the word "
                f"together with the marker U+FDD0 after it, as BertPreTokenizer does; this one gives {pieces!r}"
            )
    return None


def _wordpiece_word_problem(item: Any, space: Any, prefix: str, longest: int) -> str | None:
    if item.token.startswith(prefix):
        return f"a word entry does not start with the continuation prefix {prefix!r}; use kind 'subword'"
    if len(item.token) + len(SENTINEL) > longest:
        return f"longer than the model's max_input_chars_per_word ({longest}) allows"
    if any(_splits_bert(ch) for ch in item.token):
        return "holds whitespace or punctuation, where the pre-tokenizer splits"
    return _marked_word_problem(item, space, "")


def _greedy_problem(token: str, prefix: str, base: list[str]) -> str | None:
    """Why a new entry could make some word longer under greedy longest-match (None when it cannot).

    Where the entry fires, the base would have taken a shorter match and gone on inside the entry's
    span. If from every position of that path no base entry reaches past the span's end, the base cuts
    exactly where the entry ends, with two tokens or more: the entry saves at least one and the rest of
    the word is cut as before. '##nif' (from '##ni' + '##f') fails when '##fu' exists: in 'eretnifustandin'
    the base takes '##ni' '##fu' '##standin', the entry leaves 'ustandin' to '##us' '##t' '##andin'.
    ``base``: the entries of the tokenizer being extended, sorted.
    """
    initial = not token.startswith(prefix)
    body = token if initial else token[len(prefix) :]
    position = 0
    while position < len(body):
        form = "" if initial and position == 0 else prefix
        rest = form + body[position:]
        if position > 0 and _has_longer(base, rest):
            return f"greedy WordPiece could cut words longer with it: base entries start with {rest!r} and go on"
        end = _longest(lambda entry: _contains(base, entry), form, body, position)
        if end is None:
            return "greedy WordPiece cannot cut it into base entries"
        position = end
    return None


def _longest(contains: Any, form: str, body: str, position: int) -> int | None:
    """Greedy WordPiece's step: the end of the longest entry (``form`` + a slice of ``body``) at ``position``."""
    return next((end for end in range(len(body), position, -1) if contains(form + body[position:end])), None)


def _contains(base: list[str], text: str) -> bool:
    i = bisect.bisect_left(base, text)
    return i < len(base) and base[i] == text


def _has_longer(base: list[str], text: str) -> bool:
    """Whether some entry of the sorted ``base`` starts with ``text`` and is longer."""
    i = bisect.bisect_right(base, text)
    return i < len(base) and base[i].startswith(text)


def _pads_cjk(normalizer: Any) -> bool:
    """Whether the normalizer puts spaces around CJK ideographs (BertNormalizer's handle_chinese_chars)."""
    return normalizer is not None and normalizer.normalize_str("a\u4e00b") == "a \u4e00 b"


def _splits_bert(ch: str) -> bool:
    """Whether BertPreTokenizer splits at ``ch``: whitespace, ASCII punctuation or Unicode punctuation."""
    ascii_punctuation = ch.isascii() and ch.isprintable() and not ch.isalnum()
    return ch.isspace() or ascii_punctuation or unicodedata.category(ch).startswith("P")


# ---------------------------------------------------------------------------------------------------
# The pieces a new token replaces


def base_pieces(space: Any, token: str) -> list[str]:
    """The base pieces a new token stands for, in token space: what its embedding is initialized from.

    '▁hepatomegaly' -> ['▁hep', 'at', 'omeg', 'aly'] (no stray '▁' from the normalizer's prepended space);
    '##omegaly' -> ['##ome', '##galy'], as the pieces sit inside a word.
    """
    prefix = getattr(space.backend.model, "continuing_subword_prefix", None) if space.family == "wordpiece" else None
    if prefix and token.startswith(prefix):
        return _continuation_pieces(token[len(prefix) :], prefix, space.vocab)
    return list(space.pieces(token))


def _continuation_pieces(text: str, prefix: str, vocab: Any) -> list[str]:
    """WordPiece's greedy longest-match over a word's middle: 'omegaly' -> ['##ome', '##galy']."""
    pieces, start = [], 0
    while start < len(text):
        end = _longest(vocab.__contains__, prefix, text, start)
        if end is None:
            return []  # WordPiece gives up on the whole word then, as here
        pieces.append(prefix + text[start:end])
        start = end
    return pieces
