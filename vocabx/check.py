"""Verify the guarantees of an extended tokenizer against its base, on any texts.

1. Lossless: ``decode(encode(x)) == x`` wherever the base round-trips x.
2. Never longer: no text gets more tokens than under the base.
3. No partial-word matches: a new word or phrase token never fires inside a longer word.
4. Reachable: every added token is produced, on the texts or on its own surface (adoption > 0).

The fifth guarantee, portability, is a property of the saved folder and is tested by loading it in a
process where vocabx cannot be imported. ``check_tokens`` returns per-token failures for the extender to
drop; ``check_corpus`` returns the figures of ``vocabx check``.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from typing import Any, Iterable

from vocabx.stats import backend_of, batched

# Texts that stress the pre-tokenizer and the new entries: unicode, punctuation, casing, digits and
# runs of whitespace. Each added token is also tried glued to letters and digits on either side.
STRESS_TEXTS = [
    "",
    " ",
    "   \n\n\t  ",
    "Hello, world! It's 2024-05-01; costs $1,234.56 (approx.) — ok?",
    "ÜBER naïve café résumé façade coöperate Ørsted ﬁnance",
    "日本語のテキストと中文文本 and 한국어 텍스트",
    "emoji 😀👍🏽 and symbols ©®™ ∑∫√ ≠ ≤",
    "MiXeD CaSe WORDS and words and Words",
    "tabs\tand\nnewlines\r\nand  double  spaces",
    "a1b2c3 123456789 3.14159 0x1F",
    "'quoted' \"double\" «guillemets» „low“",
    "hyphen-ated words, e.g. non-exclusive and well-known",
    "\u200bzero\u200dwidth\ufeff",
]


def _glued(surface: str) -> list[str]:
    word = surface.strip()
    return [
        surface,
        f"x{surface}",
        f"{surface}x",
        f"{surface}s",
        f"{surface}2",
        f"2{surface}",
        f"The{surface}.",
        f"({word})",
        f"{word}{word}",
        f" {word.upper()}",
        f" {word.lower()}",
        f" {word.capitalize()}",
        f"  {word}  {word}",
        f"{surface}{surface}",
        f"\n{word}\n",
        f"«{word}»",
        f"{surface}'s",
        f"{surface}...)",  # (a run of symbols, or a mark, right after the surface: 'etc...)', 'C++\u0301')
        f"{surface}\u0301 x",
    ]


def _roundtrip(backend: Any, ids: list[int], text: str) -> bool:
    return backend.decode(ids, skip_special_tokens=False) == text


def _is_letter(ch: str, marks: bool = True) -> bool:
    return bool(ch) and (ch.isalpha() or (marks and unicodedata.category(ch).startswith("M")))


def _strips_marks(base: Any) -> bool:
    """Whether the normalizer deletes combining marks (BERT uncased): then a mark belongs to no word."""
    return base.normalizer is not None and base.normalizer.normalize_str("e\u0301") == "e"


def _in_word(text: str, start: int, end: int, surface: str, base: Any) -> bool:
    """Whether a token covering text[start:end] sits inside a longer word.

    A longer word is one the base tokenizer keeps whole: a letter touches the token on a side where the
    base pre-tokenizer has no boundary ('hepatosplenomegaly' in 'hepatosplenomegalyx'). Where the base
    itself splits ("Company'sLicensed" is "'s" + "Licensed"; 'AGREEMENT2' is two words), the token
    stands on a word of its own.
    """
    marks = not _strips_marks(base)
    touches_after = _is_letter(text[end : end + 1], marks)
    # A token without a leading space that starts right after a letter may be mid-word.
    touches_before = not surface.startswith(" ") and start > 0 and _is_letter(text[start - 1], marks)
    if not (touches_after or touches_before):
        return False
    bounds = _boundaries(base, text)
    if bounds is None:
        return True
    return (touches_after and end not in bounds) or (touches_before and start not in bounds)


def _boundaries(base: Any, text: str) -> set[int] | None:
    """Character offsets where the base pre-tokenizer starts or ends a word (None without one)."""
    pre = base.pre_tokenizer
    if pre is None or (base.normalizer is not None and base.normalizer.normalize_str(text) != text):
        return None
    out: set[int] = set()
    for _, (s, e) in pre.pre_tokenize_str(text):
        out.add(s)
        out.add(e)
    return out


def check_tokens(base_tok: Any, ext_tok: Any, added: list[dict], texts: list[str] | None = None) -> list[dict]:
    """Failures of individual added tokens: [{'id', 'token', 'reason'}], at most one per token.

    Uses the stress texts, each token's own surface glued to letters and digits, and ``texts`` (for
    reachability: a token no text produces is dropped as unreachable).
    """
    base, ext = backend_of(base_tok), backend_of(ext_tok)
    by_id = {a["id"]: a for a in added}
    failures: dict[int, str] = {}
    probes = list(STRESS_TEXTS)
    for a in added:
        probes.extend(_glued(a["surface"]))
    for text in probes:
        _check_text(base, ext, text, by_id, failures)
    if texts is not None:
        seen: Counter = Counter()
        for batch in batched(texts, 256):
            encs = ext.encode_batch(batch, add_special_tokens=False)
            bases = base.encode_batch(batch, add_special_tokens=False)
            for text, enc, benc in zip(batch, encs, bases):
                for i in enc.ids:
                    if i in by_id:
                        seen[i] += 1
                if len(enc.ids) > len(benc.ids):
                    for i in set(enc.ids) & by_id.keys():
                        failures.setdefault(i, "made a text longer than the base tokenizer does")
        needed = _merge_parts_of(added, {by_id[i]["token"] for i in seen})
        for i, a in by_id.items():
            if not seen[i] and a["token"] not in needed:
                failures.setdefault(i, "never produced on the check texts (unreachable)")
    else:
        produced = _on_own_surface(ext, added)
        for i in by_id:
            if i not in produced:
                failures.setdefault(i, "not produced on its own surface (unreachable)")
    return [{"id": i, "token": by_id[i]["token"], "reason": r} for i, r in failures.items()]


def _on_own_surface(ext: Any, added: Iterable[dict]) -> set[int]:
    """The ids of the added tokens that encoding their own surface produces (a subword also after a
    letter, where it sits inside a word)."""
    probes = [(a["id"], c) for a in added for c in [a["surface"]] + ([f"x{a['surface']}"] if a["kind"] == "subword" else [])]
    produced: set[int] = set()
    for batch in batched(probes, 1024):
        for (i, _), enc in zip(batch, ext.encode_batch([c for _, c in batch], add_special_tokens=False)):
            if i in enc.ids:
                produced.add(i)
    return produced


def _merge_parts_of(added: list[dict], produced: set[str]) -> set[str]:
    """Subwords that a produced subword is merged from, transitively: BPE's intermediate steps.

    'ISTRIBUT' never shows up as a final token when 'ISTRIBUTOR' is merged from it, yet without it that
    merge cannot fire.
    """
    parts = {a["token"]: a["merge"] for a in added if a.get("merge")}
    needed: set[str] = set()
    stack = [t for t in produced if t in parts]
    while stack:
        for part in parts[stack.pop()]:
            if part in parts and part not in needed:
                needed.add(part)
                stack.append(part)
    return needed


def _check_text(base: Any, ext: Any, text: str, by_id: dict[int, dict], failures: dict[int, str]) -> None:
    benc = base.encode(text, add_special_tokens=False)
    enc = ext.encode(text, add_special_tokens=False)
    used = [i for i in enc.ids if i in by_id]
    if not used:
        return
    if len(enc.ids) > len(benc.ids):
        for i in used:
            failures.setdefault(i, f"made {text!r} longer than the base tokenizer does")
    if _roundtrip(base, benc.ids, text) and not _roundtrip(ext, enc.ids, text):
        for i in used:
            failures.setdefault(i, f"broke the round trip of {text!r}")
    for i, (start, end) in zip(enc.ids, enc.offsets):
        a = by_id.get(i)
        if a is not None and a["kind"] in ("word", "phrase") and _in_word(text, start, end, a["surface"], base):
            failures.setdefault(i, f"fired inside a longer word in {text!r}")


def check_corpus(base_tok: Any, ext_tok: Any, texts: Iterable[str], manifest: dict | None = None, *, progress: Any = None) -> dict:
    """The figures of ``vocabx check``: token counts, and every guarantee's violations, on a corpus.

    ``progress``: a callable taking the bytes just checked (a bar's ``update``), True for a bar of its own, or None."""
    from vocabx.corpus import byte_progress, documents

    texts = documents(texts, what="texts")
    with byte_progress(progress, "check") as update:
        return _check_corpus(base_tok, ext_tok, texts, manifest, update)


def _check_corpus(base_tok: Any, ext_tok: Any, texts: Iterable[str], manifest: dict | None, progress: Any) -> dict:
    base, ext = backend_of(base_tok), backend_of(ext_tok)
    _same_base(base, ext)
    added = (manifest or {}).get("added") or _infer_added(base, ext)
    by_id = {a["id"]: a for a in added}
    out = Counter()
    seen: Counter = Counter()
    new_tokens = 0
    examples: dict[str, str] = {}
    ignore_merges_base = _with_ignore_merges(base)
    for batch in batched(texts, 256):
        bencs = base.encode_batch(batch, add_special_tokens=False)
        encs = ext.encode_batch(batch, add_special_tokens=False)
        base_decoded = base.decode_batch([e.ids for e in bencs], skip_special_tokens=False)
        ext_decoded = ext.decode_batch([e.ids for e in encs], skip_special_tokens=False)
        imencs = ignore_merges_base.encode_batch(batch, add_special_tokens=False) if ignore_merges_base is not None else None
        for k, (text, benc, enc) in enumerate(zip(batch, bencs, encs)):
            out["docs"] += 1
            out["base_tokens"] += len(benc.ids)
            out["extended_tokens"] += len(enc.ids)
            if len(enc.ids) > len(benc.ids):
                out["docs_longer"] += 1
                examples.setdefault("docs_longer", text[:200])
            if base_decoded[k] == text and ext_decoded[k] != text:
                out["roundtrip_failures"] += 1
                examples.setdefault("roundtrip_failures", text[:200])
            if imencs is not None and imencs[k].ids != benc.ids:
                out["ignore_merges_changes"] += 1
            for i, (start, end) in zip(enc.ids, enc.offsets):
                a = by_id.get(i)
                if a is None:
                    continue
                new_tokens += 1
                seen[i] += 1
                if a["kind"] in ("word", "phrase") and _in_word(text, start, end, a["surface"], base):
                    out["in_word_matches"] += 1
                    examples.setdefault("in_word_matches", f"{a['token']!r} in {text[max(0, start - 30):end + 30]!r}")
        if progress is not None:
            progress(sum(len(t.encode("utf-8")) for t in batch))
    unreachable = _unreachable(ext, by_id, seen)
    if unreachable:
        examples.setdefault("unreachable", ", ".join(repr(a["surface"]) for a in unreachable[:5]) + (" ..." if len(unreachable) > 5 else ""))
    result = {
        "docs": out["docs"],
        "base_tokens": out["base_tokens"],
        "extended_tokens": out["extended_tokens"],
        "token_reduction": round(1 - out["extended_tokens"] / out["base_tokens"], 6) if out["base_tokens"] else 0.0,
        "docs_longer": out["docs_longer"],
        "roundtrip_failures": out["roundtrip_failures"],
        "in_word_matches": out["in_word_matches"],
        "new_token_adoption": round(new_tokens / out["extended_tokens"], 6) if out["extended_tokens"] else 0.0,
        "added": len(by_id),
        "added_used": sum(1 for i in by_id if seen[i]),
        "unreachable": len(unreachable),
        "ignore_merges_changes": out["ignore_merges_changes"] if ignore_merges_base is not None else None,
        "examples": examples,
    }
    result["ok"] = not (result["docs_longer"] or result["roundtrip_failures"] or result["in_word_matches"] or result["unreachable"])
    return result


def moved_tokens(base_vocab: dict[str, int], other_vocab: dict[str, int]) -> list[str]:
    """The tokens of ``base_vocab`` that ``other_vocab`` lacks or holds at another id (none for a tokenizer
    made from that base: an extension keeps every base token at its id), in ``base_vocab``'s order."""
    return [t for t, i in base_vocab.items() if other_vocab.get(t) != i]


def _same_base(base: Any, ext: Any) -> None:
    """Refuse an extended tokenizer that does not hold the base's vocabulary at the base's ids: made from
    another base (one of the same size passes a check of the size alone), every figure would compare
    unrelated tokenizations."""
    from vocabx.errors import VocabxError

    ours = base.get_vocab(with_added_tokens=True)
    moved = moved_tokens(ours, ext.get_vocab(with_added_tokens=True))
    if moved:
        raise VocabxError(
            f"the extended tokenizer was not made from this base: {len(moved):,} of the base's {len(ours):,} tokens are "
            f"missing or at other ids there (such as {min(moved, key=ours.__getitem__)!r}); pass the base it was made from"
        )


def _unreachable(ext: Any, by_id: dict[int, dict], seen: Counter) -> list[dict]:
    """The added tokens that neither the checked texts nor their own surface produce (in context: a
    subword after a letter), and that no produced subword is merged from."""
    produced = {i for i in by_id if seen[i]}
    produced |= _on_own_surface(ext, [a for i, a in by_id.items() if i not in produced])
    needed = _merge_parts_of(list(by_id.values()), {by_id[i]["token"] for i in produced})
    return [a for i, a in by_id.items() if i not in produced and a["token"] not in needed]


def _infer_added(base: Any, ext: Any) -> list[dict]:
    """Without a manifest: the ids the extended vocabulary has beyond the base's, as word tokens."""
    base_vocab = base.get_vocab()
    out = []
    for token, i in ext.get_vocab().items():
        if token not in base_vocab:
            surface = ext.decode([i], skip_special_tokens=False)  # (a special token's surface is its content)
            out.append({"id": i, "token": token, "surface": surface, "kind": "word" if surface.startswith(" ") else "subword"})
    return out


def _with_ignore_merges(base: Any) -> Any:
    """The base tokenizer with BPE ``ignore_merges`` on, to show whether that switch alone changes anything."""
    from tokenizers import Tokenizer

    spec = json.loads(base.to_str())
    if spec["model"].get("type") != "BPE" or spec["model"].get("ignore_merges"):
        return None
    spec["model"]["ignore_merges"] = True
    return Tokenizer.from_str(json.dumps(spec))
