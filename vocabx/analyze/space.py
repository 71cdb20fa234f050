"""The model's token space: how its tokenizer cuts text into words ("pre-tokens") and tokens.

:class:`TokenSpace` wraps a tokenizer for the analysis: its family (byte-level BPE, SentencePiece BPE,
WordPiece, Unigram), its space marker (``Ġ`` or ``▁``), a word's base pieces (cached), and the rules a
candidate's surface must pass (letters, digits, whitespace). It also holds GPT-2's pre-tokenizer regex
for ASCII text, which lets :mod:`vocabx.analyze.counting` split words in Python exactly as the
tokenizer does, and byte-level BPE's byte alphabet (token strings to the text they stand for).

What it leaves out: counting (:mod:`vocabx.analyze.counting`) and choosing candidates
(:mod:`vocabx.analyze.selection`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any


# ---------------------------------------------------------------------------------------------------
# The tokenizer's view of text


@dataclass
class TokenSpace:
    """What the analysis needs to know about a tokenizer: how it splits text and how it cuts a word."""

    backend: Any
    family: str
    marker: str  # the space marker inside tokens: "Ġ", "▁", or "" when spaces are not part of tokens
    vocab: dict[str, int]
    unk_token: str | None = None
    _pieces: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    # tokenizer.json without the vocabulary and merges: model options, pre-tokenizer, decoder
    spec: dict | None = field(default=None, repr=False)
    _joined_words: set[tuple[str, ...]] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, tokenizer: Any) -> "TokenSpace":
        from vocabx.stats import backend_of

        backend = backend_of(tokenizer)
        spec = _light_spec(backend)
        family = tokenizer_family(spec)
        marker = {"byte_bpe": "Ġ", "sp_bpe": "▁", "unigram": "▁"}.get(family, "")
        unk = spec.get("model", {}).get("unk_token")
        return cls(backend=backend, family=family, marker=marker, vocab=backend.get_vocab(), unk_token=unk, spec=spec)

    def options(self) -> dict:
        """The tokenizer.json parts in :attr:`spec` (parsed from the backend if the space was built by hand)."""
        if self.spec is None:
            self.spec = _light_spec(self.backend)
        return self.spec

    def pre_tokens(self, text: str) -> list[tuple[str, str]]:
        """Text -> [(pre-token in token space, its surface text)], as the tokenizer splits it.

        'This Agreement' -> [('This', 'This'), ('ĠAgreement', ' Agreement')] for byte-level BPE.
        """
        backend = self.backend
        if backend.normalizer is not None:
            text = backend.normalizer.normalize_str(text)
        if self.family == "sp_bpe" and (backend.pre_tokenizer is None or not _splits(backend.pre_tokenizer)):
            # SentencePiece-style: spaces become ▁ in the normalizer and nothing splits words; a word is
            # a run starting at a ▁.
            return _split_metaspace(text, self.marker)
        if backend.pre_tokenizer is None:
            return [(text, text)]
        return [(piece, text[start:end]) for piece, (start, end) in backend.pre_tokenizer.pre_tokenize_str(text)]

    def has_fallback(self, pieces: tuple[str, ...]) -> bool:
        """Whether a word was cut into byte-fallback ('<0x41>') or unknown pieces: not a vocabulary word."""
        unk = self.unk_token
        return any(p == unk or (len(p) == 6 and p.startswith("<0x") and p.endswith(">")) for p in pieces)

    def joined_words(self) -> set[tuple[str, ...]]:
        """Vocabulary entries with the space marker after their start, cut before each marker: the
        only entries a phrase's words, joined, can equal (its words after the first each begin with the
        marker and hold no other), as those words. ('ĠofĠthe' -> ('Ġof', 'Ġthe'))"""
        if self._joined_words is None:
            marker = self.marker
            self._joined_words = {_cut_before(t, marker) for t in self.vocab if marker in t[1:]} if marker else set()
        return self._joined_words

    def pieces(self, pre_token: str) -> tuple[str, ...]:
        """How the base model cuts one pre-token: 'Ġhepatosplenomegaly' -> ('Ġhepat', 'os', ...)."""
        cached = self._pieces.get(pre_token)
        if cached is None:
            cached = tuple(t.value for t in self.backend.model.tokenize(pre_token))
            self._pieces[pre_token] = cached
        return cached


def _cut_before(token: str, marker: str) -> tuple[str, ...]:
    """A token cut before each space marker after its start: 'ĠofĠthe' -> ('Ġof', 'Ġthe')."""
    parts, start = [], 0
    i = token.find(marker, 1)
    while i >= 0:
        parts.append(token[start:i])
        start = i
        i = token.find(marker, i + 1)
    parts.append(token[start:])
    return tuple(parts)


def _light_spec(backend: Any) -> dict:
    """A tokenizer.json dict without what is slow to parse (the vocabulary and the merges).

    Read from the backend's model attributes and its pre-tokenizer's and decoder's own JSON; the whole
    file is parsed only when that fails.
    """
    try:
        model = backend.model
        options: dict[str, Any] = {"type": type(model).__name__}
        for key in ("unk_token", "continuing_subword_prefix", "end_of_word_suffix", "dropout", "byte_fallback"):
            if hasattr(model, key):
                options[key] = getattr(model, key)
        parts = {
            name: json.loads(part.__getstate__()) if part is not None else None
            for name, part in (("pre_tokenizer", backend.pre_tokenizer), ("decoder", backend.decoder))
        }
        if options["type"] not in ("BPE", "Unigram", "WordPiece", "WordLevel"):
            raise TypeError(options["type"])
        return {"model": options, **parts}
    except Exception:  # noqa: BLE001 - anything unusual: read the whole file
        spec = json.loads(backend.to_str())
        model = {k: v for k, v in spec.get("model", {}).items() if k not in ("vocab", "merges")}
        return {"model": model, "pre_tokenizer": spec.get("pre_tokenizer"), "decoder": spec.get("decoder")}


def tokenizer_family(spec: dict) -> str:
    """A tokenizer.json dict -> 'byte_bpe', 'sp_bpe', 'unigram', 'wordpiece' (or the model type)."""
    model = spec.get("model", {}).get("type")
    if model == "BPE":
        text = json.dumps(spec.get("pre_tokenizer")) + json.dumps(spec.get("decoder"))
        return "byte_bpe" if "ByteLevel" in text else "sp_bpe"
    return {"Unigram": "unigram", "WordPiece": "wordpiece"}.get(model, str(model).lower())


def _splits(pre_tokenizer: Any) -> bool:
    return len(pre_tokenizer.pre_tokenize_str("a b")) >= 2


def _split_metaspace(text: str, marker: str) -> list[tuple[str, str]]:
    """'▁the▁patient' -> [('▁the', ' the'), ('▁patient', ' patient')]"""
    out, start = [], 0
    for i in range(1, len(text) + 1):
        if i == len(text) or text[i] == marker:
            piece = text[start:i]
            if piece:
                out.append((piece, piece.replace(marker, " ")))
            start = i
    return out


def is_letter_word(surface: str) -> bool:
    """' Agreement' -> True, 'This' -> True, ' (' -> False, ' 2020' -> False, '  the' -> False"""
    word = surface[1:] if surface.startswith(" ") else surface
    return bool(word) and word.isalpha()


# An ASCII body that _allowed accepts: visible characters (no space, no control), a letter among them,
# and digits only where allowed (the slow per-character test's answer, as one match)
_ASCII_ALLOWED = {True: re.compile("[!-~]*[A-Za-z][!-~]*"), False: re.compile("[!-/:-~]*[A-Za-z][!-/:-~]*")}


def _allowed(surface: str, allow_digits: bool) -> bool:
    """No digits (unless allowed), no control characters, no whitespace but one leading space marker."""
    body = surface[1:] if surface.startswith(" ") else surface
    if body.isascii():
        return _ASCII_ALLOWED[bool(allow_digits)].fullmatch(body) is not None
    if not body or not any(ch.isalpha() for ch in body):
        return False
    for ch in body:
        if ch.isspace() or unicodedata.category(ch)[0] == "C" or (ch.isdigit() and not allow_digits):
            return False
        if ch == "\ufffd":
            return False
    return True


def _phrase_word_ok(surface: str, allow_digits: bool) -> tuple[bool, bool]:
    """Whether a word may start a phrase, and whether it may follow another word in one.

    Every word of a phrase passes :func:`_allowed`, and inside a phrase words are joined by exactly one
    space each, so every word after the first starts with one: ``" Agreement"`` -> (True, True),
    ``"This"`` -> (True, False), ``" 2024"`` -> (False, False) unless digits are allowed.
    """
    ok = _allowed(surface, allow_digits)
    return ok, ok and surface.startswith(" ")


# GPT-2's pre-tokenizer regex ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)
# for ASCII text, where letters, digits and whitespace are unambiguous (\x1c-\x1f are not whitespace).
_WS = "\t\n\x0b\x0c\r "
_ASCII_WORDS = re.compile(
    f"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^{_WS}A-Za-z0-9]+|[{_WS}]+(?![^{_WS}])|[{_WS}]+"
)
_NON_ASCII = re.compile("[^\x00-\x7f]+")


def _ascii_solid(ch: str) -> bool:
    """An ASCII character that is not whitespace: a space after it always starts a new pre-token."""
    return ch < "\x80" and ch not in _WS


def _splits_like_gpt2(space: TokenSpace) -> bool:
    """Whether words can be split in Python exactly as the tokenizer does: byte-level BPE with GPT-2's
    pre-tokenizer regex and nothing else before the model (no normalizer, no prefix space, no dropout)."""
    if space.family != "byte_bpe" or space.backend.normalizer is not None:
        return False
    spec = space.options()
    pre, model = spec.get("pre_tokenizer") or {}, spec.get("model") or {}
    if pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") or not pre.get("use_regex", True):
        return False
    if model.get("type") != "BPE" or model.get("dropout") or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return False
    probe = "Hello, world's 'll  x\t\n\n  12.5%!! \x1c\x1fa b\r\n c  "
    return [p for p, _ in space.backend.pre_tokenizer.pre_tokenize_str(probe)] == [
        "".join(_byte_encoder()[b] for b in w.encode("utf-8")) for w in _ASCII_WORDS.findall(probe)
    ]


def _continuing_prefix(space: TokenSpace) -> str:
    """WordPiece's '##' (or a BPE model's continuing-subword prefix), stripped when joining a word."""
    return space.options()["model"].get("continuing_subword_prefix") or ""


def _starts_alnum(surface: str) -> bool:
    return bool(surface) and (surface[0].isalpha() or surface[0].isdigit())


_BYTE_DECODER: dict[str, int] | None = None


def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's bytes-to-unicode map ('Ġ' -> 32)."""
    global _BYTE_DECODER
    if _BYTE_DECODER is None:
        bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
        cs = bs[:]
        n = 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + n)
                n += 1
        _BYTE_DECODER = {chr(c): b for b, c in zip(bs, cs)}
    return _BYTE_DECODER


_BYTE_ENCODER: list[str] | None = None


def _byte_encoder() -> list[str]:
    """GPT-2's bytes-to-unicode map as a list: byte -> character (32 -> 'Ġ')."""
    global _BYTE_ENCODER
    if _BYTE_ENCODER is None:
        table = [""] * 256
        for ch, b in _byte_decoder().items():
            table[b] = ch
        _BYTE_ENCODER = table
    return _BYTE_ENCODER


def _surface_of_piece(piece: str, space: TokenSpace) -> str | None:
    """'Ġhepat' -> ' hepat' (None when the piece is not whole UTF-8 characters)."""
    if space.family == "byte_bpe":
        decoder = _byte_decoder()
        try:
            return bytes(decoder[ch] for ch in piece).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            return None
    if space.marker:
        return piece.replace(space.marker, " ")
    return piece
