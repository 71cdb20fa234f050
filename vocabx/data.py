"""Training data: split documents into train and eval, tokenize, and pack into fixed-length blocks.

Packing puts the documents one after another, each followed by the tokenizer's EOS, and cuts the stream
into blocks of ``block_size`` tokens, so no position is padding. ``[a1 a2] [b1 b2 b3]``, block 3 ->
``[a1 a2 EOS] [b1 b2 b3]`` (the trailing ``EOS`` that does not fill a block is dropped). Attention runs
across the document boundaries inside a block; the EOS tells the model where one document ends.

- :func:`split_documents`: a seeded, hash-based split by document (exact duplicates land on the same
  side, so the eval split holds no text seen in training);
- :func:`pack_texts`: texts -> an ``(n_blocks, block_size)`` int32 array in document order, tokenized
  through ``datasets.map`` (several processes for large corpora) and cached on disk by content, so a
  second run on the same texts and tokenizer skips tokenization;
- :func:`pack_dataset`: the same for a ``datasets.Dataset`` (or ``IterableDataset``) in a user's own
  pipeline, returning a dataset with one ``input_ids`` block per row.
- :func:`split_tokens`: blocks -> the same text with a seeded share of some tokens' occurrences written
  with their pieces (``vocabx train --split-new``).

Without the ``datasets`` package, :func:`pack_texts` tokenizes in this process and gives the same blocks.
What it leaves out: shuffling, which the training loop does per epoch from its seed.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from vocabx.errors import VocabxError

# Corpora below this many documents are tokenized in one process: starting workers costs more.
_PARALLEL_MIN_DOCS = 20_000
_CACHE_VERSION = "vocabx.packed/1"


@dataclass
class PackedBlocks:
    """Token blocks of a corpus, in document order, and what packing kept and dropped."""

    blocks: Any  # numpy int32 array (n_blocks, block_size), possibly memory-mapped
    docs: int
    tokens: int  # tokens of the documents including one EOS each
    dropped_tokens: int  # the tail that did not fill a last block
    cached: bool = False

    def as_dict(self) -> dict:
        n, size = self.blocks.shape
        return {"docs": self.docs, "tokens": self.tokens, "blocks": int(n), "block_size": int(size), "dropped_tokens": self.dropped_tokens, "cached": self.cached}


def split_documents(
    texts: Iterable[str], eval_fraction: float, seed: int = 0, *, max_eval_docs: int | None = None
) -> tuple[list[str], list[str]]:
    """Split documents into (train, eval) by a seeded hash of each text (see ``analyze.split_holdout``).

    Exact duplicates always land on the same side. When the hash sends no document to eval but there
    are at least two distinct documents, the one with the smallest hash goes there (with its
    duplicates), so a small corpus still gets an eval split. ``max_eval_docs`` keeps the first N eval
    documents in corpus order and gives the rest back to training.
    """
    from vocabx.analyze import split_holdout

    if not 0 <= eval_fraction < 1:
        raise VocabxError(f"--eval-fraction must be in [0, 1), got {eval_fraction}")
    texts = list(texts)
    if eval_fraction == 0:
        return texts, []
    train_iter, held = split_holdout(texts, eval_fraction, seed)
    train = list(train_iter)
    if not held and len(set(train)) >= 2:
        key = str(seed).encode()
        first = min(set(train), key=lambda t: hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8, key=key).digest())
        held = [t for t in train if t == first]
        train = [t for t in train if t != first]
    if max_eval_docs is not None and len(held) > max_eval_docs:
        keep = set(dict.fromkeys(held[:max_eval_docs]))
        train += [t for t in held if t not in keep]
        held = [t for t in held if t in keep]
    return train, held


def eos_id(tokenizer: Any) -> int:
    """The document separator: the tokenizer's EOS, else its separator or BOS token."""
    unk, unk_id = getattr(tokenizer, "unk_token", None), getattr(tokenizer, "unk_token_id", None)
    for name in ("eos", "sep", "bos"):
        value = getattr(tokenizer, f"{name}_token_id", None)
        if value is None:
            continue
        token = getattr(tokenizer, f"{name}_token", None)
        if unk_id is not None and value == unk_id and token is not None and str(token) != str(unk):
            # (transformers gives a token missing from the vocabulary the unknown token's id)
            raise VocabxError(
                f"the tokenizer's {name.upper()} token {str(token)!r} is not in its vocabulary (it has the id of the unknown "
                f"token {str(unk)!r}); set tokenizer.eos_token to the model's end-of-text token (for a model folder, "
                "\"eos_token\" in its tokenizer_config.json)"
            )
        return int(value)
    raise VocabxError(
        "the tokenizer has no EOS (nor SEP or BOS) token to put between packed documents; "
        "set tokenizer.eos_token to the model's end-of-text token (for a model folder, \"eos_token\" in its tokenizer_config.json)"
    )


def _tokenize_batch(batch: dict, *, tokenizer: Any, text_field: str, eos: int, column: bool = False) -> dict:
    """{'text': ['ab', None, '', 'c']} -> {'input_ids': [[a, b, EOS], [], [], [c, EOS]]} (None, a missing
    text, and '' are no document: no lone EOS in the stream)

    ``column``: the texts are a user's dataset column, which an error about them names."""
    texts = batch[text_field]
    present = [t for t in texts if _is_document(t)]
    # (a list would be taken for a (text, text_pair) and a number refused without naming it: checked first)
    try:
        if not all(isinstance(t, str) for t in present):
            raise TypeError("not text")
        ids = iter(tokenizer(present, add_special_tokens=False, return_attention_mask=False, verbose=False)["input_ids"]) if present else iter(())
    except (TypeError, ValueError) as exc:  # (the encoder names neither the document nor the problem)
        from vocabx.stats import not_text_error

        error = not_text_error(present, None)
        if error is not None and column:
            error = VocabxError(f"column {text_field!r} of the dataset: {error}; or pass text_field= naming a column of text")
        raise error or exc
    return {"input_ids": [next(ids) + [eos] if _is_document(t) else [] for t in texts]}


def _is_document(text: Any) -> bool:
    """None (a missing text) and '' are no document: they add no tokens, not even an EOS."""
    return text is not None and text != ""


def _group_batch(batch: dict, *, block_size: int) -> dict:
    """{'input_ids': [[1, 2, 3], [4, 5]]}, block 2 -> {'input_ids': [[1, 2], [3, 4]]} (5 is dropped)."""
    flat = [t for row in batch["input_ids"] for t in row]
    usable = len(flat) - len(flat) % block_size
    return {"input_ids": [flat[i : i + block_size] for i in range(0, usable, block_size)]}


def pack_dataset(
    dataset: Any,
    tokenizer: Any,
    block_size: int,
    *,
    num_proc: int | None = None,
    text_field: str = "text",
    batch_size: int = 1000,
) -> Any:
    """Tokenize a ``datasets`` dataset and pack it into rows of ``block_size`` token ids.

    Returns a dataset with one column, ``input_ids``, each row one block (use it as ``labels`` too: the
    model shifts them); a ``DatasetDict`` gives a ``DatasetDict`` of the packed splits. Documents are
    joined with the tokenizer's EOS in dataset order; a missing text (None) or an empty one is no document,
    and a value that is not text is an error naming it (a list would otherwise be read as a text pair). Each batch of
    ``batch_size`` documents drops the tail that does not fill a block, so the waste is under one block
    per batch. ``num_proc`` processes tokenize; the packing runs in one, so the blocks are the same for
    any ``num_proc``; an empty dataset gives an empty one with the ``input_ids`` column. Works on ``IterableDataset`` too (``num_proc`` is then ignored). ``datasets``
    caches both maps for datasets backed by files.

    >>> ds = datasets.Dataset.from_dict({"text": ["Signs and symptoms", "of the disease"]})  # doctest: +SKIP
    >>> list(pack_dataset(ds, load_tokenizer("smollm2-135m"), block_size=4)["input_ids"])   # doctest: +SKIP
    [[31287, 284, 2336, 2], [1714, 260, 1611, 2]]                                          # (2 is EOS)
    """
    block_size = _check_block_size(block_size)
    if not hasattr(dataset, "map"):
        raise VocabxError(
            f"pack_dataset takes a datasets.Dataset or IterableDataset, got {type(dataset).__name__}; for a list of texts use "
            "vocabx.pack_texts, or datasets.Dataset.from_dict({'text': texts})"
        )
    eos = eos_id(tokenizer)
    if isinstance(dataset, dict):  # DatasetDict, IterableDatasetDict: each split on its own
        return type(dataset)(
            {name: pack_dataset(split, tokenizer, block_size, num_proc=num_proc, text_field=text_field, batch_size=batch_size) for name, split in dataset.items()}
        )
    streaming = not hasattr(dataset, "__len__")
    columns = getattr(dataset, "column_names", None)
    if columns is None and streaming:
        # (a stream whose features are unknown, such as IterableDataset.from_generator: its first row
        # names the columns to check and to remove, which would otherwise stay beside the blocks)
        first = next(iter(dataset.take(1)), None)
        columns = list(first) if first is not None else None
    if columns is not None and text_field not in columns:
        raise VocabxError(f"the dataset has no column {text_field!r}; columns present: {', '.join(columns)}; pass text_field=")
    parallel = {} if streaming else {"num_proc": num_proc if num_proc and num_proc > 1 else None, "desc": "tokenizing"}
    if hasattr(dataset, "with_format"):  # (a pandas, arrow or torch format would hand the map no str)
        dataset = dataset.with_format(None)
    tokenized = dataset.map(
        _tokenize_batch,
        batched=True,
        batch_size=batch_size,
        remove_columns=columns,
        fn_kwargs={"tokenizer": tokenizer, "text_field": text_field, "eos": eos, "column": True},
        **parallel,
    )
    # Packing in one process: with num_proc, each worker's shard would end its own last batch early and
    # drop its own tail, so the blocks would change with num_proc.
    packing = {} if streaming else {"desc": "packing"}
    packed = tokenized.map(_group_batch, batched=True, batch_size=batch_size, fn_kwargs={"block_size": block_size}, **packing)
    if not streaming and "input_ids" not in packed.column_names:
        # (an empty dataset: map never calls the functions, so no column would name the blocks)
        import datasets

        return datasets.Dataset.from_dict({"input_ids": []}, features=datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int32"))}))
    return packed


def _check_block_size(block_size: Any) -> int:
    """``block_size`` as an int (a numpy integer is one too), or the error naming it."""
    if isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral) or block_size < 2:
        raise VocabxError(f"block_size must be an int of at least 2, got {block_size!r}")
    return int(block_size)


def _fingerprint(texts: Sequence[str], tokenizer: Any, block_size: int, eos: int) -> str:
    """A content hash of everything the blocks depend on."""
    from vocabx.stats import backend_of

    digest = hashlib.sha256()
    digest.update(json.dumps([_CACHE_VERSION, block_size, eos, len(texts)]).encode())
    digest.update(backend_of(tokenizer).to_str().encode("utf-8"))
    if getattr(tokenizer, "split_special_tokens", False):  # (a runtime setting, not in the JSON above, that changes the ids)
        digest.update(b"split_special_tokens")
    for text in texts:
        if text is None:  # (no document; its own mark, which no text's length can be)
            digest.update(b"\xff" * 8)
            continue
        encoded = text.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()[:32]


def default_cache_dir() -> Path:
    from vocabx.models import vocabx_home

    return vocabx_home() / "packed"


def pack_texts(
    texts: Sequence[str],
    tokenizer: Any,
    block_size: int,
    *,
    num_proc: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> PackedBlocks:
    """Tokenize documents and pack them into an ``(n_blocks, block_size)`` int32 array, in order.

    Unlike :func:`pack_dataset`, the whole corpus is one stream, so at most one partial block is
    dropped; a None or an empty str in ``texts`` is no document, as there. ``num_proc`` defaults to one process below
    20,000 documents and up to 8 above. The result is cached under ``cache_dir`` (default
    ``$VOCABX_HOME/packed``) by a hash of the texts, the tokenizer, its EOS and the block size, written
    atomically and memory-mapped on later runs (a damaged entry is packed again).
    """
    import numpy as np

    from vocabx.corpus import refuse_one_text

    block_size = _check_block_size(block_size)
    refuse_one_text(texts)
    texts = list(texts)
    eos = eos_id(tokenizer)
    path = None
    if use_cache:
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = folder / f"{_fingerprint(texts, tokenizer, block_size, eos)}.npy"
        if path.is_file():
            try:
                meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
                return PackedBlocks(np.load(path, mmap_mode="r"), meta["docs"], meta["tokens"], meta["dropped_tokens"], cached=True)
            except (OSError, ValueError, KeyError):  # (a cache entry damaged or half deleted: packed again below)
                pass
    if num_proc is None:
        from vocabx.analyze.counting import usable_cores  # (a container may allow fewer than the host's)

        num_proc = 1 if len(texts) < _PARALLEL_MIN_DOCS else min(8, usable_cores())
    lengths, flat = _tokenize_all(texts, tokenizer, eos, num_proc)
    tokens = int(flat.shape[0])
    usable = tokens - tokens % block_size
    blocks = flat[:usable].reshape(-1, block_size)
    packed = PackedBlocks(blocks, sum(map(_is_document, texts)), tokens, tokens - usable)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp.npy")
        try:
            np.save(tmp, blocks)
            meta_tmp = tmp.with_suffix(".json")
            meta_tmp.write_text(json.dumps({"schema": _CACHE_VERSION, "docs": packed.docs, "tokens": tokens, "dropped_tokens": packed.dropped_tokens}), encoding="utf-8")
            os.replace(meta_tmp, path.with_suffix(".json"))
            os.replace(tmp, path)  # the .npy last: its presence means both files are complete
        finally:
            for leftover in (tmp, tmp.with_suffix(".json")):
                leftover.unlink(missing_ok=True)
    return packed


def _tokenize_all(texts: list[str], tokenizer: Any, eos: int, num_proc: int) -> tuple[Any, Any]:
    """Token ids of every document plus its EOS, concatenated: (lengths, flat int32 array)."""
    import numpy as np

    try:
        import datasets
    except ImportError:
        datasets = None
    if datasets is None or not texts:
        rows = _tokenize_batch({"text": texts}, tokenizer=tokenizer, text_field="text", eos=eos)["input_ids"] if texts else []
    else:
        was = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
        try:
            try:
                ds = datasets.Dataset.from_dict({"text": texts})
            except Exception as exc:  # (pyarrow refuses a document that is not text, naming neither it nor why)
                from vocabx.stats import not_text_error

                raise not_text_error(texts) or exc
            rows = ds.map(
                _tokenize_batch,
                batched=True,
                batch_size=1000,
                remove_columns=["text"],
                num_proc=num_proc if num_proc > 1 else None,
                fn_kwargs={"tokenizer": tokenizer, "text_field": "text", "eos": eos},
            ).with_format("numpy")["input_ids"]
        finally:
            if was:
                datasets.enable_progress_bars()
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    flat = np.concatenate([np.asarray(r, dtype=np.int32) for r in rows]) if len(rows) else np.zeros(0, dtype=np.int32)
    return lengths, flat


def split_tokens(blocks: Any, pieces: dict[int, Sequence[int]], fraction: float, seed: int) -> tuple[Any, dict]:
    """Write a seeded share of the occurrences of some tokens with their pieces, and re-cut the blocks.

    ``blocks`` is an ``(n, block_size)`` array as :func:`pack_texts` returns; each occurrence of a key of
    ``pieces`` is replaced, with probability ``fraction`` (one seeded draw per occurrence), by the ids
    its value lists: for an added token, the base pieces that spelled it before it was added, so the text
    stays the same and only its segmentation changes (segmentation dropout, as BPE-dropout does for
    merges). The longer stream is cut into blocks of the same size; its tail that fills no block is
    dropped. Returns the new blocks and counts: ``occurrences`` of the keys, ``split`` of them, and
    ``tokens`` before and after.

    >>> split_tokens(np.array([[5, 1, 5, 2], [7, 5, 9, 9]]), {5: [3, 4]}, 0.999, 0)[0]  # doctest: +SKIP
    array([[3, 4, 1, 3], [4, 2, 7, 3]])   # [4, 9, 9] fills no block and is dropped
    """
    import numpy as np

    if not 0 <= fraction < 1:
        raise VocabxError(f"the share of new-token occurrences to split must be in [0, 1), got {fraction!r}")
    blocks = np.asarray(blocks)
    size = blocks.shape[1]
    flat = blocks.reshape(-1)
    stats = {"occurrences": 0, "split": 0, "tokens": int(flat.shape[0]), "tokens_after": int(flat.shape[0])}
    if not pieces or fraction == 0 or flat.shape[0] == 0:
        return blocks, stats
    keys = np.sort(np.fromiter(pieces, dtype=np.int64, count=len(pieces)))
    lengths = np.array([len(pieces[int(k)]) for k in keys], dtype=np.int64)
    if (lengths < 1).any():
        raise VocabxError("every split token needs at least one piece")
    table = np.zeros((len(keys), int(lengths.max())), dtype=flat.dtype)
    for row, k in enumerate(keys):
        table[row, : lengths[row]] = pieces[int(k)]
    slot = np.searchsorted(keys, flat)
    slot[slot == len(keys)] = 0
    found = np.flatnonzero(keys[slot] == flat)
    chosen = found[np.random.default_rng(seed).random(found.shape[0]) < fraction]
    width = np.ones(flat.shape[0], dtype=np.int64)
    width[chosen] = lengths[slot[chosen]]
    starts = np.concatenate(([0], np.cumsum(width)[:-1]))
    out = np.empty(int(width.sum()), dtype=flat.dtype)
    keep = np.ones(flat.shape[0], dtype=bool)
    keep[chosen] = False
    out[starts[keep]] = flat[keep]
    rows = slot[chosen]
    for k in range(table.shape[1]):
        has = lengths[rows] > k
        out[starts[chosen[has]] + k] = table[rows[has], k]
    usable = out.shape[0] - out.shape[0] % size
    stats.update(occurrences=int(found.shape[0]), split=int(chosen.shape[0]), tokens_after=int(out.shape[0]))
    return out[:usable].reshape(-1, size), stats
