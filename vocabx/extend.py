"""Extend a tokenizer with real vocabulary entries, resize the model and initialize the new rows.

``tokenizer.add_tokens`` is the usual recipe, and it breaks: an added word skips the space marker, fires
inside longer words and differs between slow and fast tokenizers. vocabx edits the tokenizer's own model
instead. For byte-level BPE (GPT-2, Llama-3, SmolLM2, Qwen2):

- a ``word`` becomes a vocabulary entry with its space marker (``Ġhepatosplenomegaly``) and the BPE
  model gets ``ignore_merges``, so a pre-token found whole in the vocabulary is one token; it can only
  fire on the whole pre-token, never inside a longer word;
- a ``subword`` becomes a vocabulary entry plus a merge appended after all base merges, so base
  tokenization runs first and the new merges then apply in rank order;
- a ``phrase`` becomes a vocabulary entry (``ĠofĠthe``) plus an alternative in front of the
  pre-tokenizer's split pattern that keeps it as one pre-token when no letter or digit follows. The
  alternatives are compiled as a trie, so matching stays linear in the text.

Other families are handled by :mod:`vocabx.families` when present; a family it cannot extend is an error
naming it. Each added token is then checked for the guarantees (:mod:`vocabx.check`); a candidate that
breaks one, or that is never produced on the check texts, is dropped with its reason.

What it leaves out: choosing the candidates (``vocabx.analyze``) and training (``vocabx.train``).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from vocabx.errors import VocabxError, read_json
from vocabx.outputs import staged_dir

EXTENSION_SCHEMA = "vocabx.extension/1"
MAX_TERM_CHARS = 64
log = logging.getLogger("vocabx")
_DROP_ROUNDS = 5  # rounds of checking, dropping the failing tokens and rebuilding (one or two are usual)
# GPT-2's pre-tokenizer pattern, which tokenizers' ByteLevel(use_regex=True) applies.
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_NOT_FOLLOWED_BY_WORD = r"(?![\p{L}\p{N}])"
# A phrase that ends in a symbol or a mark ('Inc.', 'C++') ends only before whitespace or the end of the
# text: the split pattern glues a run of symbols and marks together, and cutting one after the phrase
# could take more tokens than the base ('etc...)' -> ' etc.' '..' ')' against ' etc' '...)').
_NOT_FOLLOWED_BY_TEXT = r"(?!\S)"


@dataclass
class NewToken:
    """A token to add, in the model's token space."""

    token: str  # as stored in the vocabulary: 'Ġhepatosplenomegaly', 'ĠofĠthe', 'ectomy'
    surface: str  # the text it stands for: ' hepatosplenomegaly', ' of the', 'ectomy'
    kind: str  # word, subword or phrase
    merge: list[str] | None = None  # subwords: the two tokens the appended merge joins
    source: str = ""  # where it came from: 'report rank 12', 'terms line 3'


@dataclass
class Extension:
    """An extended tokenizer (and model), the ids it added and what it dropped."""

    tokenizer: Any
    model: Any
    new_ids: list[int]
    added: list[dict]
    dropped: list[dict]
    manifest: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# Inputs: report candidates or a terms file


def tokens_from_report(report: dict, top: int | None = None) -> list[NewToken]:
    """The report's ranked candidates (the first ``top``) as tokens to add."""
    candidates = report.get("candidates", [])
    if top is not None:
        if top < 1:
            raise VocabxError(f"--top must be at least 1, got {top}")
        candidates = candidates[:top]
    return [
        NewToken(c["token"], c["surface"], c["kind"], merge=c.get("merge"), source=f"report rank {c.get('rank', i + 1)}")
        for i, c in enumerate(candidates)
    ]


def read_terms(path: str | Path) -> tuple[list[str], list[dict]]:
    """Read a terms file: one term per line, as it appears in text. Returns (terms, dropped lines).

    Blank lines and lines starting with '#' are skipped; duplicates, control characters, whitespace
    other than single spaces, invalid UTF-8 and terms over 64 characters are dropped with a reason.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise VocabxError(f"cannot read terms file {str(path)!r}: {exc.strerror or exc}") from exc
    text = raw.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    terms: list[str] = []
    dropped: list[dict] = []
    seen: set[str] = set()
    # split on newlines only: str.splitlines would also split at form feeds and other separators,
    # turning a damaged term into two and shifting every later line number
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        term = line.strip()
        if not term or term.startswith("#"):
            continue
        reason = _term_problem(term)
        if reason is None and term in seen:
            reason = "duplicate"
        if reason:
            dropped.append({"token": term[:80], "surface": term[:80], "kind": "term", "reason": f"{reason} (terms line {number})"})
            continue
        seen.add(term)
        terms.append(term)
    return terms, dropped


def _term_problem(term: str) -> str | None:
    if "\ufffd" in term:
        return "not valid UTF-8"
    if len(term) > MAX_TERM_CHARS:
        return f"longer than {MAX_TERM_CHARS} characters"
    if any(unicodedata.category(ch)[0] == "C" for ch in term):
        return "contains control characters"
    if any(ch.isspace() and ch != " " for ch in term) or "  " in term:
        return "contains whitespace other than single spaces"
    return None


def tokens_from_terms(terms: Iterable[str], tokenizer: Any) -> tuple[list[NewToken], list[dict]]:
    """Terms as they appear in running text -> tokens, each in its word-initial form (' term').

    A term that the pre-tokenizer keeps as one piece becomes a word token; one it splits (several words,
    or inner punctuation as in 'non-exclusive') becomes a phrase token. Each term is stripped and checked
    as :func:`read_terms` checks a file's lines ('hepatosplenomegaly ' is 'hepatosplenomegaly'; an empty
    term, one over 64 characters or with control characters or other whitespace than single spaces is
    dropped with its reason).
    """
    from vocabx.analyze import TokenSpace

    if isinstance(terms, (str, bytes)):
        raise VocabxError(f"terms is one {type(terms).__name__} ({str(terms)[:40]!r}), not a list of terms; pass [term]")
    space = TokenSpace.of(tokenizer)
    tokens, dropped = [], []
    for given in terms:
        if not isinstance(given, str):
            dropped.append({"token": repr(given)[:80], "surface": repr(given)[:80], "kind": "term", "reason": f"not text ({type(given).__name__})"})
            continue
        term = given.strip()
        reason = "empty" if not term else _term_problem(term)
        if reason:
            dropped.append({"token": given[:80], "surface": given[:80], "kind": "term", "reason": reason})
            continue
        surface = term if term.startswith(" ") or not space.marker else " " + term
        pre = space.pre_tokens(surface)
        if len(pre) > 1 and pre[0][0] == space.marker and space.marker != "Ġ":
            # SentencePiece layouts prepend '▁' themselves; that one is not the term's. (A byte-level
            # pattern that splits digits from their space, as Llama-3's does, gives ' 2 diabetes' a lone
            # 'Ġ' of its own: that one is the term's.)
            pre = pre[1:]
        if not pre:
            dropped.append({"token": term, "surface": term, "kind": "term", "reason": "empty after normalization"})
            continue
        token = "".join(p for p, _ in pre)
        kind = "word" if len(pre) == 1 else "phrase"
        if token in space.vocab:
            dropped.append({"token": token, "surface": surface, "kind": kind, "reason": "already in the vocabulary"})
            continue
        tokens.append(NewToken(token, surface, kind, source="terms"))
    return tokens, dropped


# ---------------------------------------------------------------------------------------------------
# The tokenizer


def extend_tokenizer(tokenizer: Any, new: list[NewToken]) -> tuple[Any, list[dict], list[dict]]:
    """Return (extended tokenizer, added, dropped). ``added`` entries carry the new ids, in order."""
    from vocabx.analyze import TokenSpace

    space = TokenSpace.of(tokenizer)
    spec = json.loads(space.backend.to_str())
    if space.family != "byte_bpe":
        from vocabx import families

        spec, added, dropped = families.extend_spec(spec, new, space)
    else:
        spec, added, dropped = _extend_byte_bpe(spec, new, space)
    return _wrap(tokenizer, spec), added, dropped


def _next_id(spec: dict) -> int:
    ids = list(spec["model"]["vocab"].values()) if isinstance(spec["model"]["vocab"], dict) else [len(spec["model"]["vocab"]) - 1]
    ids += [t["id"] for t in spec.get("added_tokens", [])]
    return max(ids) + 1


def _extend_byte_bpe(spec: dict, new: list[NewToken], space: Any) -> tuple[dict, list[dict], list[dict]]:
    model = spec["model"]
    vocab: dict[str, int] = model["vocab"]
    merges: list = model["merges"]
    merge_as_list = bool(merges) and isinstance(merges[0], list)
    next_id = _next_id(spec)
    added, dropped, phrases = [], [], []
    from vocabx.analyze.space import _byte_decoder

    decoder = _byte_decoder()
    for item in new:
        reason = None
        if item.token in vocab:
            reason = "already in the vocabulary"
        elif any(ch not in decoder for ch in item.token):
            reason = "not in the byte-level alphabet"
        elif item.kind == "subword":
            if not item.merge or len(item.merge) != 2 or "".join(item.merge) != item.token:
                reason = "subword without a valid merge"
            elif any(part not in vocab for part in item.merge):
                reason = f"its merge needs {[p for p in item.merge if p not in vocab][0]!r}, which was not added"
        elif item.kind not in ("word", "phrase"):
            reason = f"unknown kind {item.kind!r}"
        if reason:
            dropped.append({"token": item.token, "surface": item.surface, "kind": item.kind, "reason": reason})
            continue
        vocab[item.token] = next_id
        if item.kind == "subword":
            merges.append(list(item.merge) if merge_as_list else " ".join(item.merge))  # type: ignore[arg-type]
        elif item.kind == "phrase":
            phrases.append(item.surface)
        entry = {"token": item.token, "surface": item.surface, "kind": item.kind, "id": next_id, "source": item.source}
        if item.kind == "subword":
            entry["merge"] = list(item.merge)  # type: ignore[arg-type]
        added.append(entry)
        next_id += 1
    if added:  # (the added tokens after the base vocabulary, such as Llama-3's specials, keep their ids)
        from vocabx.families import fill_holes

        fill_holes(vocab, spec)
    # Whole pre-tokens found in the vocabulary become one token: that is how word and phrase entries fire.
    model["ignore_merges"] = True
    if phrases:
        spec["pre_tokenizer"] = _with_phrases(spec.get("pre_tokenizer"), phrases)
    return spec, added, dropped


def _with_phrases(pre: dict | None, phrases: list[str]) -> dict:
    """Put the phrase alternatives in front of the pre-tokenizer's split pattern (merged into one trie with
    the phrases an earlier extension put there, so that a longer earlier phrase still wins)."""
    alternatives = phrase_pattern(phrases)
    if pre is None:
        raise VocabxError("phrase tokens need a pre-tokenizer with a split pattern; this tokenizer has none")
    if pre.get("type") == "ByteLevel":
        if not pre.get("use_regex", True):
            raise VocabxError("phrase tokens need a split pattern; this ByteLevel pre-tokenizer has use_regex=false")
        return {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": f"{alternatives}|{GPT2_PATTERN}"}, "behavior": "Isolated", "invert": False},
                {**pre, "use_regex": False},
            ],
        }
    if pre.get("type") == "Sequence":
        items = list(pre["pretokenizers"])
        for i, item in enumerate(items):
            if item.get("type") == "Split" and "Regex" in item.get("pattern", {}) and item.get("behavior") == "Isolated":
                rest = item["pattern"]["Regex"]
                earlier = _phrase_block(rest)
                if earlier is not None:  # (extending an extension: one trie, or ' of the' would cut ' of the best')
                    old, rest = earlier
                    known = set(old)
                    alternatives = phrase_pattern(old + [p for p in phrases if p not in known])
                items[i] = {**item, "pattern": {"Regex": f"{alternatives}|{rest}"}}
                return {**pre, "pretokenizers": items}
            if item.get("type") == "ByteLevel" and item.get("use_regex", True):
                items[i : i + 1] = _with_phrases(item, phrases)["pretokenizers"]
                return {**pre, "pretokenizers": items}
    raise VocabxError(f"phrase tokens are not supported with the pre-tokenizer {pre.get('type')!r}; drop --kinds phrase")


def phrase_pattern(phrases: list[str]) -> str:
    """A regex matching any of the phrases, longest first, when no letter or digit follows.

    [' of the', ' of them', ' in'] -> '(?: (?:in|of\\ the(?:m)?))' with the lookahead after each end
    (a phrase ending in a symbol or mark, such as ' Inc.', ends only before whitespace or the text's end).
    """
    trie: dict = {}
    for phrase in phrases:
        node = trie
        for ch in phrase:
            node = node.setdefault(ch, {})
        node[""] = True
    return "(?:" + _trie_regex(trie) + ")"


def _trie_regex(node: dict, last: str = "") -> str:
    branches = []
    for ch in sorted(k for k in node if k):
        branches.append(_escape(ch) + _trie_regex(node[ch], ch))
    if "" in node:
        # Longer phrases first; the end of this one only where no letter or digit follows (after a
        # letter or digit) or where nothing but whitespace follows (after a symbol or mark).
        branches.append(_NOT_FOLLOWED_BY_TEXT if last and unicodedata.category(last)[0] not in "LN" else _NOT_FOLLOWED_BY_WORD)
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")"


def _phrase_block(regex: str) -> tuple[list[str], str] | None:
    """The phrases that :func:`phrase_pattern` put in front of a split pattern, and the pattern after them;
    None when ``regex`` does not start with such a block. (It reads only what phrase_pattern writes.)

    phrase_pattern([' of the', ' in']) + '|' + GPT2_PATTERN -> ([' in', ' of the'], GPT2_PATTERN)
    """
    if not regex.startswith("(?:"):
        return None
    phrases: list[str] = []
    ends = (_NOT_FOLLOWED_BY_WORD, _NOT_FOLLOWED_BY_TEXT)

    def node(pos: int, prefix: str) -> int:
        if not regex.startswith("(?:", pos):
            return branch(pos, prefix)
        pos += 3
        while True:
            pos = branch(pos, prefix)
            if regex[pos] == ")":
                return pos + 1
            if regex[pos] != "|":
                raise ValueError(pos)
            pos += 1

    def branch(pos: int, prefix: str) -> int:
        for end in ends:
            if regex.startswith(end, pos):
                phrases.append(prefix)
                return pos + len(end)
        if regex[pos] == "\\":
            return node(pos + 2, prefix + regex[pos + 1])
        if regex[pos] in "()|":
            raise ValueError(pos)
        return node(pos + 1, prefix + regex[pos])

    try:
        pos = node(3, "")
    except (ValueError, IndexError, RecursionError):
        return None
    if not phrases or not regex.startswith(")|", pos):
        return None
    return phrases, regex[pos + 2 :]


def _escape(ch: str) -> str:
    return "\\" + ch if ch in r".^$*+?()[]{}|\-/ #" else ch


def _wrap(tokenizer: Any, spec: dict) -> Any:
    """A transformers tokenizer like ``tokenizer`` but with the edited tokenizer.json.

    Built through save/load so that the result is exactly what a user will load from the saved folder.
    """
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="vocabx-tok-") as tmp:
        tokenizer.save_pretrained(tmp)
        Path(tmp, "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        _portable_config(Path(tmp))
        new = AutoTokenizer.from_pretrained(tmp)
    new.model_max_length = tokenizer.model_max_length
    return new


def _portable_config(folder: Path) -> None:
    """Name the generic fast tokenizer class, which every transformers version since 4 can load."""
    path = folder / "tokenizer_config.json"
    if path.is_file():
        config = json.loads(path.read_text(encoding="utf-8"))
        if config.get("tokenizer_class") != "PreTrainedTokenizerFast":
            # The edited tokenizer.json is authoritative; a model-specific class (BertTokenizer,
            # LlamaTokenizer, ...) would rebuild its own normalizer and pre-tokenizer and drop the edits.
            config.setdefault("vocabx_base_tokenizer_class", config.get("tokenizer_class"))
            config["tokenizer_class"] = "PreTrainedTokenizerFast"
            path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------------
# Checking and the whole extension


def extend(
    model: Any,
    new: list[NewToken],
    *,
    tokenizer: Any = None,
    init: str = "mean_shift",
    check_texts: Iterable[str] | None = None,
    pad_to_multiple_of: int | None = None,
    tokenizer_only: bool = False,
    seed: int = 0,
    base_spec: str | None = None,
) -> Extension:
    """Extend a model spec (or a loaded model with ``tokenizer``) by ``new`` tokens.

    Returns the extended tokenizer, the resized model with initialized rows (None with
    ``tokenizer_only``) and the new ids. Tokens that break a guarantee or that no check text produces
    are dropped with a reason; check texts default to a built-in stress set only.
    """
    from vocabx.check import check_tokens
    from vocabx.models import load_model, load_tokenizer

    started = time.monotonic()
    if isinstance(model, (str, os.PathLike)):
        base_spec = base_spec or os.fspath(model)
        tokenizer = tokenizer or load_tokenizer(model)
        model = None if tokenizer_only else load_model(model)
    elif tokenizer is None:
        raise VocabxError("extend() got a model object but no tokenizer; pass tokenizer=")
    elif tokenizer_only:
        model = None
    ext_tok, added, dropped = extend_tokenizer(tokenizer, new)
    # Guarantees and reachability; a dropped token is removed and the tokenizer rebuilt without it.
    texts = list(check_texts) if check_texts is not None else None
    log.info(f"extend: checking {len(added):,} new token{'' if len(added) == 1 else 's'} against the guarantees" + (f" and on {len(texts):,} documents" if texts is not None else ""))
    for rounds in itertools.count(1):
        failures = check_tokens(tokenizer, ext_tok, added, texts)
        if not failures:
            break
        if rounds > _DROP_ROUNDS:  # (each round drops what fails; a rebuilt tokenizer is always checked again)
            raise VocabxError(
                f"{len(failures)} new tokens still fail the guarantees after {_DROP_ROUNDS} rounds of dropping the failing ones "
                f"(e.g. {failures[0]['token']!r}: {failures[0]['reason']}); pass fewer tokens (--top) and report this to vocabx"
            )
        log.info(f"extend: {len(failures):,} failed a check; rebuilding the tokenizer without them")
        bad = {f["id"] for f in failures}
        dropped += [{**{k: a[k] for k in ("token", "surface", "kind")}, "reason": next(f["reason"] for f in failures if f["id"] == a["id"])} for a in added if a["id"] in bad]
        keep = {a["token"] for a in added if a["id"] not in bad}
        new = [n for n in new if n.token in keep]
        ext_tok, added, more = extend_tokenizer(tokenizer, new)
        dropped += more
    new_ids = [a["id"] for a in added]
    init_summary: dict = {}
    if model is not None and new_ids:
        from vocabx.initialize import initialize_new_rows, resize_for_new_tokens

        from vocabx.stats import backend_of

        from vocabx.analyze import TokenSpace

        base = backend_of(tokenizer)
        space = TokenSpace.of(tokenizer)
        pieces = []
        for a in added:
            if space.family == "byte_bpe":
                ids = base.encode(a["surface"], add_special_tokens=False).ids
                if a["kind"] != "phrase" and not a["surface"].startswith(" ") and a["token"][:1] != "Ġ":
                    # word-medial subwords: their pieces as inside a word, not as a word of their own
                    ids = [base.token_to_id(t.value) for t in base.model.tokenize(a["token"])]
            else:
                from vocabx.families import base_pieces  # token space: no prepended '▁', '##' mid-word

                # (a character the vocabulary lacks, which Unigram leaves as unknown, is read as the unknown token)
                found = [base.token_to_id(p) for p in base_pieces(space, a["token"])]
                ids = [i for i in (tokenizer.unk_token_id if i is None else i for i in found) if i is not None]
            pieces.append(ids)
        for a, p in zip(added, pieces):
            a["pieces"] = [base.id_to_token(i) for i in p]
        log.info(f"extend: initializing {len(new_ids):,} new embedding rows ({init})")
        resize_for_new_tokens(model, max(new_ids) + 1, pad_to_multiple_of=pad_to_multiple_of)
        init_summary = initialize_new_rows(model, new_ids, pieces, init, seed=seed)
    manifest = _manifest(base_spec, tokenizer, ext_tok, model, added, dropped, init_summary, init, pad_to_multiple_of)
    manifest["seconds"] = round(time.monotonic() - started, 2)
    return Extension(ext_tok, model, new_ids, added, dropped, manifest)


def _manifest(base_spec, tokenizer, ext_tok, model, added, dropped, init_summary, init, pad) -> dict:
    import tokenizers
    import transformers

    from vocabx import __version__

    versions = {"vocabx": __version__, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:
        pass
    return {
        "schema": EXTENSION_SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "base_model": {
            "spec": base_spec,
            "name_or_path": getattr(tokenizer, "name_or_path", None),
            "vocab_size": len(tokenizer),
        },
        "vocab_size": len(ext_tok),
        "embedding_rows": model.get_input_embeddings().weight.shape[0] if model is not None else None,
        "added": added,
        "dropped": dropped,
        "init": init_summary or {"strategy": init},
        "pad_to_multiple_of": pad,
        "versions": versions,
    }


def save_extension(ext: Extension, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Write a standard Hugging Face model folder (safetensors) plus ``vocabx.json`` and ``added.tsv``.

    Written into a temporary folder and renamed into place, so an interruption leaves no folder that
    looks complete.
    """
    with staged_dir(out_dir, overwrite=overwrite, marker="vocabx.json", what="extended model") as tmp:
        if ext.model is not None:
            ext.model.save_pretrained(tmp)
        ext.tokenizer.save_pretrained(tmp)
        _portable_config(tmp)
        (tmp / "vocabx.json").write_text(json.dumps(ext.manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "added.tsv").write_text(_added_tsv(ext.manifest), encoding="utf-8")
    return Path(out_dir)


def load_extension(path: str | Path) -> Extension:
    """An extended model folder written by :func:`save_extension`, loaded back as an :class:`Extension`
    (its model, tokenizer and manifest), for instance to fit its rows."""
    from vocabx.models import load_model

    manifest = read_manifest(path)
    added = manifest["added"]
    return Extension(load_extended_tokenizer(path), load_model(path), [a["id"] for a in added], added, manifest["dropped"], manifest)


def _added_tsv(manifest: dict) -> str:
    """The readable twin of vocabx.json: one line per added and per dropped token."""

    def clean(value: Any) -> str:
        return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

    lines = ["status\tid\tkind\ttoken\tsurface\tpieces\tnote"]
    for a in manifest["added"]:
        lines.append("\t".join(clean(v) for v in ("added", a["id"], a["kind"], a["token"], a["surface"], " ".join(a.get("pieces", [])), a.get("source", ""))))
    for d in manifest["dropped"]:
        lines.append("\t".join(clean(v) for v in ("dropped", "", d["kind"], d["token"], d["surface"], "", d["reason"])))
    return "\n".join(lines) + "\n"


def load_extended_tokenizer(path: str | Path) -> Any:
    """Load an extended tokenizer folder with plain transformers (vocabx adds nothing at load time)."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not (path / "tokenizer.json").is_file():
        raise VocabxError(f"{str(path)!r} has no tokenizer.json; pass a folder written by vocabx extend")
    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # (a damaged tokenizer.json or tokenizer_config.json: name the folder, not a JSON error)
        first = (str(exc).strip().splitlines() or [""])[0]
        raise VocabxError(
            f"cannot load the tokenizer in {str(path)!r} ({type(exc).__name__}: {first}); its files are damaged: "
            "write the folder again with vocabx extend"
        ) from exc


def read_manifest(path: str | Path) -> dict:
    """Read ``vocabx.json`` from an extended model folder, checking its schema."""
    if not Path(path).exists():
        raise VocabxError(f"{str(path)!r} does not exist; pass a folder written by vocabx extend")
    file = Path(path) / "vocabx.json" if Path(path).is_dir() else Path(path)
    if not file.is_file():
        raise VocabxError(f"{str(path)!r} has no vocabx.json; pass a folder written by vocabx extend")
    data = read_json(file, "write the folder again with vocabx extend")
    if not isinstance(data, dict) or data.get("schema") != EXTENSION_SCHEMA:
        raise VocabxError(f"{file}: schema {data.get('schema') if isinstance(data, dict) else None!r}, expected {EXTENSION_SCHEMA!r}")
    return data

