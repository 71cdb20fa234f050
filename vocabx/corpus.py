"""Read a corpus into a stream of document texts.

A corpus source is a file, a folder (read recursively, in sorted order), a glob, ``hf:NAME[:CONFIG][:SPLIT]``
for a Hugging Face dataset, or ``-`` for standard input. File formats, each optionally gzipped (``.gz``):

- ``.txt`` ``.md``: one document per file, or one per line with ``line_docs=True``;
- ``.jsonl`` (and ``.json`` holding JSON lines, a list of records or ``{"data": [...]}``): the ``text_field``;
- ``.csv`` ``.tsv``: the ``text_field`` column;
- ``.parquet``: the ``text_field`` column, read in batches.

Everything streams, so memory stays flat however large the corpus is; the exception is a ``.json`` file,
which is read whole (one file at a time) to tell one JSON value from JSON lines.

Damaged input is repaired or skipped, counted in ``TextStream.report`` and warned about once per file
(:class:`~vocabx.errors.VocabxWarning`): invalid UTF-8 (standard input included) and lone surrogates
from JSON escapes become U+FFFD, NUL bytes are removed, a byte-order mark is dropped, CRLF becomes LF
(in every format, record values too), binary files and files of unsupported types found in folders or
globs are skipped with a reason, empty files and empty documents are skipped, and JSON records that
cannot be read (invalid JSON, a line that is not an object, a record without the text field after
records with it) are skipped; a quote that opens a CSV or TSV field without closing it is read as the
character it is rather than running over the lines after it, also when another stray quote lines later
would close it. A file found in a folder or glob that cannot be opened or read through (a truncated
gzip, a damaged parquet file) is skipped with a reason, keeping what was read of it; named on its own,
it is an error. A source that does not exist or cannot be read, a text field missing from a file's first
record, or a corpus with no text at all, is an error.

What it leaves out: deduplication and train/test splitting, which belong to the stages that need them.
"""

from __future__ import annotations

import codecs
import csv
import glob as globlib
import gzip
import io
import json
import os
import re
import sys
import threading
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from contextlib import contextmanager
from typing import IO, Any, Callable, Iterable, Iterator

from vocabx.errors import VocabxError, VocabxWarning
from vocabx.models import hub_reachable

TEXT_SUFFIXES = (".txt", ".md")
RECORD_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
SUFFIXES = TEXT_SUFFIXES + RECORD_SUFFIXES
_BINARY_MAGIC = (b"\x89PNG", b"%PDF", b"PK\x03\x04", b"\x7fELF", b"GIF8", b"\xff\xd8\xff", b"\x1f\x8b", b"PAR1")
_SNIFF_BYTES = 8192
# Share of control bytes (other than tab, newlines, form feed, escape) above which a file is not text.
_BINARY_CONTROL_SHARE = 0.30

# Invalid UTF-8 is replaced by U+FFFD like errors="replace", but counted so the user can be told.
_decode_state = threading.local()
# Text files already warned about as read beside a folder's record files (once per process: `adapt`
# reads the same folders in several stages).
_warned_beside_records: set[str] = set()


def _count_and_replace(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _decode_state.replaced = getattr(_decode_state, "replaced", 0) + 1
    return "\ufffd", exc.end


codecs.register_error("vocabx-replace", _count_and_replace)

# Control characters inside JSON strings (a raw tab) are accepted rather than losing the record.
_JSON = json.JSONDecoder(strict=False)
_SURROGATE = re.compile("[\ud800-\udfff]")


_JSON_TYPES = {int: "number", float: "number", bool: "boolean", list: "array", type(None): "null"}


class _NotARecord(Exception):
    """A JSON value that holds no document (a number, a list, a record without the text field)."""


def _no_surrogates(value: str | None) -> str | None:
    """Lone surrogates (a JSON escape such as "\\ud800" with no pair) -> U+FFFD, counted like invalid UTF-8.

    Only JSON escapes make them, so callers pass the values of text that holds a backslash.
    """
    if not value or value.isascii():
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        fixed, n = _SURROGATE.subn("\ufffd", value)
        _decode_state.surrogates = getattr(_decode_state, "surrogates", 0) + n
        return fixed


@dataclass
class CorpusReport:
    """What a read saw: documents yielded, and everything skipped or repaired on the way."""

    sources: list[str] = field(default_factory=list)
    files: int = 0
    docs: int = 0
    empty_docs: int = 0
    empty_files: int = 0
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    replaced_chars: int = 0
    nul_bytes: int = 0
    bad_records: int = 0

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "docs": self.docs,
            "empty_docs": self.empty_docs,
            "empty_files": self.empty_files,
            "skipped_files": [{"path": p, "reason": r} for p, r in self.skipped_files],
            "replaced_chars": self.replaced_chars,
            "nul_bytes": self.nul_bytes,
            "bad_records": self.bad_records,
        }


class TextStream:
    """An iterator of document texts with a :class:`CorpusReport` filled in as it goes.

    It can be iterated once, like a file. ``approx_bytes`` is the summed size of the input files when
    known (for progress bars), else None. ``groups`` receives each yielded document's group as it goes:
    its record's ``group_field`` value (None where a record lacks it) when :func:`read_corpus` was given
    one, else the file (or ``hf:`` name, or ``-``) it came from.
    """

    def __init__(self, docs: Iterator[str], report: CorpusReport, approx_bytes: int | None, groups: list | None = None):
        self._docs = docs
        self.report = report
        self.approx_bytes = approx_bytes
        self.groups: list = [] if groups is None else groups

    def __iter__(self) -> "TextStream":
        return self

    def __next__(self) -> str:
        return next(self._docs)


def read_corpus(
    *sources: str | os.PathLike | Iterable[str | os.PathLike],
    text_field: str = "text",
    line_docs: bool = False,
    allow_empty: bool = False,
    stdin: IO[str] | None = None,
    group_field: str | None = None,
    role: str | None = None,
) -> TextStream:
    """Stream the documents of one or more corpus sources.

    >>> docs = read_corpus("corpora/medical", "notes/*.txt")     # doctest: +SKIP
    >>> next(docs)[:40]                                          # doctest: +SKIP
    'DISCHARGE SUMMARY. The patient is a 64-'

    Sources are checked up front (a missing path fails before any text is read). Raises
    :class:`VocabxError` when, at the end, no document had any text, unless ``allow_empty``.
    ``group_field`` names the record field (JSON, CSV, parquet, hf: column) whose value is each
    document's group in ``TextStream.groups`` (for ``analyze --min-groups``); without it the groups are
    the files. In a folder that also holds record files (.jsonl, .csv, ...), a .txt or .md file (usually a
    README) is read as a document too, with a warning once per process that names a glob leaving it out.
    ``role``: where the sources were given (a command-line flag such as ``--reference``), named in the
    errors about a source that does not exist and a corpus with no text.
    """
    flat: list[str] = []
    for source in sources:
        if isinstance(source, (str, os.PathLike)):
            flat.append(os.fspath(source))
        else:
            flat.extend(os.fspath(s) for s in source)
    if not flat:
        raise VocabxError("no corpus given; pass a file, folder, glob, hf:NAME or - for stdin")
    report = CorpusReport(sources=flat)
    try:
        plan = [_expand(source) for source in flat]
    except VocabxError as exc:
        if role is None:
            raise
        raise VocabxError(f"{role}: {exc}") from None
    sizes = [_size(item) for items, _ in plan for item in items]
    approx = None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)
    reader = _Reader(report, text_field, line_docs, stdin if stdin is not None else sys.stdin, group_field)
    return TextStream(_stream(reader, plan, allow_empty, role), report, approx, reader.groups)


def _size(item: str) -> int | None:
    if item == "-" or item.startswith("hf:"):
        return None
    try:
        return os.path.getsize(item)
    except OSError:
        return None


def _expand(source: str) -> tuple[list[str], bool]:
    """One source -> the files (or the stdin / hf marker) it stands for, in a stable order, and whether
    they were found (in a folder or by a glob, where files of unsupported types are skipped) rather than
    named (a file named on its own is read whatever its suffix, as plain text)."""
    if source == "-" or source.startswith("hf:"):
        return [source], False
    path = Path(source).expanduser()
    if path.is_dir():
        return _walk(path), True
    if path.exists():
        return [str(path)], False
    if any(ch in source for ch in "*?["):
        found: dict[str, None] = {}
        for match in sorted(globlib.glob(os.path.expanduser(source), recursive=True)):
            # (a folder the pattern matches is read like a folder named on its own; `**` matches a
            # folder and its files, which are read once)
            found.update(dict.fromkeys(_walk(Path(match)) if os.path.isdir(match) else [match] if os.path.isfile(match) else []))
        if not found:
            raise VocabxError(f"corpus glob {source!r} matches no files; check the pattern and quote it")
        return list(found), True
    raise VocabxError(f"corpus path {source!r} does not exist; pass a file, folder, glob, hf:NAME or -")


def _walk(path: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
    return found


def _stream(reader: "_Reader", plan: list[tuple[list[str], bool]], allow_empty: bool, role: str | None = None) -> Iterator[str]:
    for source, (items, from_folder) in zip(reader.report.sources, plan):
        beside = _text_beside_records(source, items)
        for item in items:
            docs = reader.read(item, from_folder, item in beside)
            if item in beside and item not in _warned_beside_records:
                # (said when it gives a document: a binary or empty one gets its own message, or none)
                first = next(docs, None)
                if first is None:
                    continue
                _warned_beside_records.add(item)
                warnings.warn(
                    f"{item}: a text file in a folder of record files ({beside[item]}), read as one document; "
                    f"if it describes the data rather than being part of it, pass the record files or a glob "
                    f"such as {os.path.join(source, '**', '*' + beside[item].split(', ')[0])!r} instead of the folder",
                    VocabxWarning,
                    stacklevel=2,
                )
                yield first
            yield from docs
    if reader.report.docs == 0 and not allow_empty:
        r = reader.report
        raise VocabxError(
            f"{role + ' ' if role else ''}corpus {' '.join(r.sources)} has no text: {_plural(r.files, 'file')} read, "
            f"{r.empty_files} empty, {_plural(r.empty_docs, 'empty document')}, {_plural(r.bad_records, 'unreadable record')}, "
            f"{_plural(len(r.skipped_files), 'file')} skipped; check the paths and --text-field"
        )


def _plural(n: int, noun: str) -> str:
    """1, 'file' -> '1 file'; 2, 'file' -> '2 files'"""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _text_beside_records(source: str, items: list[str]) -> dict[str, str]:
    """The .txt and .md files of a folder ``source`` that also holds record files (.jsonl, .csv, ...):
    usually a README or a data card, which the contract's formats still read as a document. Each maps to
    the record formats found, for the warning.

    "data/" holding a.jsonl and README.md -> {"data/README.md": ".jsonl"}
    """
    if len(items) < 2 or not os.path.isdir(os.path.expanduser(source)):
        return {}
    formats = {item: _format_of(item)[0] for item in items}
    records = sorted({f for f in formats.values() if f in RECORD_SUFFIXES})
    if not records:
        return {}
    return {item: ", ".join(records) for item, f in formats.items() if f in TEXT_SUFFIXES}


def _format_of(path: str) -> tuple[str, bool]:
    """'notes.jsonl.gz' -> ('.jsonl', True)."""
    name = path.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    return os.path.splitext(name)[1], gz


class _Reader:
    def __init__(self, report: CorpusReport, text_field: str, line_docs: bool, stdin: IO[str], group_field: str | None = None):
        self.report = report
        self.text_field = text_field
        self.line_docs = line_docs
        self.stdin = stdin
        self.group_field = group_field
        self.group: Any = None  # the group_field value of the record read last
        self.groups: list = []  # each yielded document's group

    # -- one item -----------------------------------------------------------------------------------

    def read(self, item: str, from_folder: bool, beside_records: bool = False) -> Iterator[str]:
        """The documents of one file (or of stdin, or of an hf: dataset). ``beside_records``: a text file
        found in a folder of record files, read as one document whose group is None under --group-field
        (as a record without the field), where a text file on its own is an error."""
        if item == "-":
            _decode_state.replaced = _decode_state.surrogates = 0
            yield from self._emit_all(self._stdin_docs(), "<stdin>")
            self._warn_replaced("<stdin>")
            return
        if item.startswith("hf:"):
            yield from self._emit_all(self._hf_docs(item), item)
            return
        suffix, gz = _format_of(item)
        if suffix not in SUFFIXES and from_folder:
            self._skip(item, f"unsupported file type {suffix or '(none)'!r}; vocabx reads {' '.join(SUFFIXES)}")
            return
        try:
            raw = gzip.open(item, "rb") if gz else open(item, "rb")
        except OSError as exc:
            self._unreadable(item, from_folder, exc.strerror or str(exc), "check its permissions, or leave it out", exc)
            return
        self.report.files += 1
        before = self.report.docs
        _decode_state.replaced = _decode_state.surrogates = 0
        try:
            with raw:
                head = self._peek(raw)
                if not head:
                    self.report.empty_files += 1
                    return
                if suffix == ".parquet":
                    docs = self._parquet_docs(raw, item, from_folder)
                else:
                    why = _binary_reason(head)
                    if why:
                        self._skip(item, why)
                        return
                    docs = self._text_docs(raw, head, item, suffix, beside_records)
                yield from self._emit_all(docs, item)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # (a gzip stream that is cut short or damaged)
            read = self.report.docs - before
            damaged = f"the gzip file is truncated or damaged after {read:,} documents ({_one_line(exc)})"
            self._unreadable(item, from_folder, damaged, "download or compress it again (gzip -t FILE tests one)", exc, read)
        except OSError as exc:
            self._unreadable(item, from_folder, exc.strerror or str(exc), "check the file, or leave it out", exc)
        self._warn_replaced(item)
        if self.report.docs == before and not any(p == item for p, _ in self.report.skipped_files):
            self.report.empty_files += 1

    def _warn_replaced(self, item: str) -> None:
        replaced, surrogates = getattr(_decode_state, "replaced", 0), getattr(_decode_state, "surrogates", 0)
        self.report.replaced_chars += replaced + surrogates
        if replaced:
            warnings.warn(f"{item}: {replaced} invalid UTF-8 byte sequences replaced by U+FFFD", VocabxWarning, stacklevel=3)
        if surrogates:
            warnings.warn(
                f"{item}: {surrogates} lone surrogates (JSON escapes such as \\ud800 without their pair) replaced by U+FFFD",
                VocabxWarning,
                stacklevel=3,
            )

    def _peek(self, raw: IO[bytes]) -> bytes:
        reader = io.BufferedReader(raw) if not hasattr(raw, "peek") else raw
        return reader.peek(_SNIFF_BYTES)[:_SNIFF_BYTES]  # type: ignore[union-attr]

    def _unreadable(self, item: str, from_folder: bool, reason: str, fix: str, exc: BaseException | None = None, read: int = 0) -> None:
        """A file that cannot be opened or read through (a truncated gzip, a damaged parquet file): skipped
        with a warning when a folder or glob found it, among others (the documents read from it before
        the damage stay read); an error naming it when it was named on its own."""
        if not from_folder:
            raise VocabxError(f"cannot read corpus file {item!r}: {reason}; {fix}") from exc
        self._skip(item, f"{reason}; {fix}" + (f"; the {read:,} documents before the damage are read" if read else ""))

    def _skip(self, item: str, reason: str) -> None:
        self.report.skipped_files.append((item, reason))
        warnings.warn(f"{item}: skipped, {reason}", VocabxWarning, stacklevel=3)

    def _emit_all(self, docs: Iterable[str | None], where: str) -> Iterator[str]:
        nul_before = self.report.nul_bytes
        report = self.report
        groups, by_field = self.groups, self.group_field is not None
        for doc in docs:
            if doc is None:
                report.empty_docs += 1
                continue
            if "\x00" in doc:
                report.nul_bytes += doc.count("\x00")
                doc = doc.replace("\x00", "")
            if "\r" in doc:  # (record values: text files are read with universal newlines)
                doc = doc.replace("\r\n", "\n")
            if not doc.strip():
                report.empty_docs += 1
                continue
            report.docs += 1
            groups.append(self.group if by_field else where)
            yield doc
        if report.nul_bytes > nul_before:
            warnings.warn(f"{where}: {report.nul_bytes - nul_before} NUL bytes removed", VocabxWarning, stacklevel=2)

    # -- formats ------------------------------------------------------------------------------------

    def _text_docs(self, raw: IO[bytes], head: bytes, item: str, suffix: str, beside_records: bool = False) -> Iterator[str | None]:
        encoding = "utf-16" if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
        records = suffix in (".csv", ".tsv")
        # (closed here, with the file under it: a wrapper left to the garbage collector warns that it was unclosed)
        with io.TextIOWrapper(raw, encoding=encoding, errors="vocabx-replace", newline="" if records else None) as text:
            if records:
                yield from self._csv_docs(text, item, "\t" if suffix == ".tsv" else ",")
            elif suffix == ".jsonl":
                yield from self._jsonl_docs(text, item)
            elif suffix == ".json":
                yield from self._json_docs(text, item)
            else:
                if self.group_field is not None and not beside_records:
                    raise VocabxError(
                        f"{item}: --group-field {self.group_field!r} reads a field of JSON, CSV or parquet records, and this is "
                        "plain text; leave --group-field out to make each file a group"
                    )
                self.group = None
                if self.line_docs:
                    for line in text:
                        yield line.rstrip("\n")
                else:
                    yield text.read()

    def _record_text(self, record: object, item: str, where: str, seen_field: bool = False) -> str | None:
        """A JSON value's text. Raises _NotARecord for a value that holds no document (skipped and counted
        by the caller), and VocabxError when the text field is missing and no earlier record of the file
        had it (``seen_field``), which is a wrong --text-field rather than one damaged record."""
        if isinstance(record, str):
            self.group = None
            return record
        if not isinstance(record, dict):
            raise _NotARecord(f"a JSON {_JSON_TYPES.get(type(record), type(record).__name__)}")
        if self.text_field not in record:
            if seen_field:
                raise _NotARecord(f"no field {self.text_field!r}")
            fields = ", ".join(map(str, record)) or "(none)"
            raise VocabxError(
                f"{item}{where}: no field {self.text_field!r}; fields present: {fields}; pick one with --text-field"
            )
        value = record[self.text_field]
        if self.group_field is not None:
            if self.group_field not in record and not seen_field:
                # (the file's first record lacks it: a wrong --group-field, as a CSV without the column is;
                # a later record without it has no group)
                fields = ", ".join(map(str, record))
                raise VocabxError(f"{item}{where}: no field {self.group_field!r}; fields present: {fields}; pick one with --group-field")
            self.group = record.get(self.group_field)
        if value is None or isinstance(value, str):
            return value
        raise VocabxError(
            f"{item}{where}: field {self.text_field!r} holds {type(value).__name__}, not text; pick a text field with --text-field"
        )

    def _jsonl_docs(self, lines: Iterable[str], item: str, first_line: int = 1) -> Iterator[str | None]:
        def records() -> Iterator[tuple[int, object, bool]]:
            bad_lines = []
            for number, line in enumerate(lines, first_line):
                if not line.strip():
                    continue
                try:
                    yield number, _JSON.decode(line), "\\" in line
                except json.JSONDecodeError:
                    self.report.bad_records += 1
                    bad_lines.append(number)
            if bad_lines:  # (before the warning about lines that hold no record, as the lines are read)
                shown = ", ".join(map(str, bad_lines[:5])) + (" ..." if len(bad_lines) > 5 else "")
                warnings.warn(f"{item}: {len(bad_lines)} lines are not valid JSON and were skipped (lines {shown})", VocabxWarning, stacklevel=3)

        yield from self._records_text(records(), item, "line")

    def _records_text(self, records: Iterable[tuple[int, object, bool]], item: str, unit: str) -> Iterator[str | None]:
        """The text of each ``(number, record, may hold escapes)`` of a JSON or JSON lines file (``unit``:
        "line" or "record"); values that hold no record are skipped, counted and warned about at the end."""
        not_records = []
        seen_field = False
        for number, record, escapes in records:
            try:
                value = self._record_text(record, item, f" {unit} {number}", seen_field)
            except _NotARecord as exc:
                self.report.bad_records += 1
                not_records.append((number, str(exc)))
                continue
            seen_field = True
            yield _no_surrogates(value) if escapes else value
        self._warn_not_records(item, unit, not_records)

    def _warn_not_records(self, item: str, unit: str, not_records: list[tuple[int, str]]) -> None:
        """One warning for the JSON values of a file (or of stdin) skipped as holding no document."""
        if not_records:
            shown = ", ".join(f"{n}: {why}" for n, why in not_records[:5]) + (" ..." if len(not_records) > 5 else "")
            warnings.warn(
                f"{item}: {len(not_records)} {unit}s hold no {self.text_field!r} text and were skipped ({unit} {shown}); "
                f"each {unit} should be a JSON object with a {self.text_field!r} field",
                VocabxWarning,
                stacklevel=4,
            )

    def _json_docs(self, text: IO[str], item: str) -> Iterator[str | None]:
        first = text.readline()
        rest = text.read()
        content = first + rest
        try:
            data = _JSON.decode(content)
        except json.JSONDecodeError:
            # Many ".json" files are really JSON lines. (Split on newlines only: str.splitlines also cuts
            # at U+2028, U+0085 and others, which JSON strings may hold as they are.)
            yield from self._jsonl_docs(content.split("\n"), item)
            return
        if isinstance(data, dict) and self.text_field not in data:
            lists = [v for v in data.values() if isinstance(v, list)]
            if "data" in data and isinstance(data["data"], list):
                data = data["data"]
            elif len(lists) == 1:
                data = lists[0]
        records = data if isinstance(data, list) else [data]
        escapes = "\\" in content
        yield from self._records_text(((index, record, escapes) for index, record in enumerate(records)), item, "record")

    def _csv_docs(self, text: IO[str], item: str, delimiter: str) -> Iterator[str | None]:
        csv.field_size_limit(2**31 - 1)
        rows = _csv_rows(text, item, delimiter)
        fieldnames = next(rows, None)
        if fieldnames is None:
            return
        if self.text_field not in fieldnames:
            raise VocabxError(
                f"{item}: no column {self.text_field!r}; columns present: {', '.join(fieldnames)}; "
                "pick one with --text-field"
            )
        if self.group_field is not None and self.group_field not in fieldnames:
            raise VocabxError(
                f"{item}: no column {self.group_field!r}; columns present: {', '.join(fieldnames)}; "
                "pick one with --group-field"
            )

        def column(name: str) -> int:  # (a name given twice: the last one, as csv.DictReader does)
            return len(fieldnames) - 1 - fieldnames[::-1].index(name)

        at = column(self.text_field)
        group_at = column(self.group_field) if self.group_field is not None else None
        for row in rows:
            if not row:  # (a blank line)
                continue
            if group_at is not None:
                self.group = row[group_at] if group_at < len(row) else None
            yield row[at] if at < len(row) else None

    def _parquet_docs(self, raw: IO[bytes], item: str, from_folder: bool) -> Iterator[str | None]:
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(raw)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            self._unreadable(item, from_folder, f"not a readable parquet file ({_one_line(exc)})", "write or download it again", exc)
            return
        names = parquet.schema_arrow.names
        if self.text_field not in names:
            raise VocabxError(f"{item}: no column {self.text_field!r}; columns present: {', '.join(names)}; pick one with --text-field")
        group = self.group_field
        if group is not None and group not in names:
            raise VocabxError(f"{item}: no column {group!r}; columns present: {', '.join(names)}; pick one with --group-field")
        columns = [self.text_field] + ([group] if group is not None and group != self.text_field else [])
        for batch in parquet.iter_batches(columns=columns, batch_size=1024):
            texts = batch.column(0).to_pylist()
            labels = batch.column(len(columns) - 1).to_pylist() if group is not None else [None] * len(texts)
            for value, label in zip(texts, labels):
                if value is not None and not isinstance(value, str):
                    raise VocabxError(f"{item}: column {self.text_field!r} holds {type(value).__name__}, not text; pick a text column with --text-field")
                self.group = label
                yield value

    def _stdin_docs(self) -> Iterator[str | None]:
        # The process's own stdin is decoded here, as files are: sys.stdin would fail on invalid UTF-8, or
        # (under a C or POSIX locale) hand on lone surrogates that the tokenizer then refuses.
        buffer = getattr(self.stdin, "buffer", None) if self.stdin is sys.stdin else None
        lines = io.TextIOWrapper(buffer, encoding="utf-8-sig", errors="vocabx-replace") if buffer is not None else self.stdin
        seen_field = False  # (as in a .jsonl file: after records with the field, one without it is skipped)
        not_records: list[tuple[int, str]] = []
        try:
            for number, line in enumerate(lines, 1):
                stripped = line.rstrip("\r\n")
                if number == 1:
                    stripped = stripped.removeprefix("\ufeff")
                if stripped.startswith("{"):
                    try:
                        value = self._record_text(_JSON.decode(stripped), "<stdin>", f" line {number}", seen_field)
                    except json.JSONDecodeError:
                        pass
                    except _NotARecord as exc:
                        self.report.bad_records += 1
                        not_records.append((number, str(exc)))
                        continue
                    else:
                        seen_field = True
                        yield _no_surrogates(value) if "\\" in stripped else value
                        continue
                self.group = None
                yield stripped or None
            self._warn_not_records("<stdin>", "line", not_records)
        finally:
            if lines is not self.stdin:
                lines.detach()  # (leaves sys.stdin.buffer open)

    def _hf_docs(self, item: str) -> Iterator[str | None]:
        parts = item[3:].split(":")
        if not parts[0] or len(parts) > 3:
            raise VocabxError(f"corpus {item!r} is not hf:NAME[:CONFIG][:SPLIT]")
        name = parts[0]
        config = parts[1] if len(parts) > 1 and parts[1] else None
        split = parts[2] if len(parts) > 2 and parts[2] else "train"
        try:
            import datasets
        except ImportError as exc:
            raise VocabxError(f"reading {item!r} needs the package datasets; pip install datasets") from exc
        # Without a reachable hub, datasets retries for half a minute before failing; offline mode
        # still loads a cached dataset and fails at once otherwise.
        offline = not Path(name).exists() and not hub_reachable()
        was_offline = datasets.config.HF_HUB_OFFLINE
        try:
            datasets.config.HF_HUB_OFFLINE = was_offline or offline
            ds = datasets.load_dataset(name, config, split=split, streaming=True)
            columns = getattr(ds, "column_names", None)
            if columns is not None and self.text_field not in columns:
                raise VocabxError(f"{item}: no column {self.text_field!r}; columns present: {', '.join(columns)}; pick one with --text-field")
            self.report.files += 1
            for row in ds:
                yield self._record_text(row, item, "")
        except VocabxError:
            raise
        except Exception as exc:  # datasets raises many types for a missing or unreachable dataset
            where = " (the hub cannot be reached and it is not cached)" if offline else ""
            raise VocabxError(
                f"cannot load the Hugging Face dataset {item!r}{where}: {_one_line(exc)}; check the name, config "
                "and split, or download it and pass the local files"
            ) from exc
        finally:
            datasets.config.HF_HUB_OFFLINE = was_offline


class _Lines:
    """The physical lines of a text, counted, keeping those read since :meth:`take`; lines handed back with
    :meth:`again` are read again first."""

    def __init__(self, text: Iterable[str]):
        self.lines = iter(text)
        self.number = 0  # of the last line read
        self.read: list[str] = []
        self.pending: list[str] = []  # (reversed: the next line last)

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        line = self.pending.pop() if self.pending else next(self.lines)
        self.number += 1
        self.read.append(line)
        return line

    def take(self) -> list[str]:
        read, self.read = self.read, []
        return read

    def again(self, lines: list[str]) -> None:
        self.pending.extend(reversed(lines))
        self.number -= len(lines)


def _csv_rows(text: Iterable[str], item: str, delimiter: str) -> Iterator[list[str]]:
    """The rows of a CSV or TSV file, header first, with quoted fields as csv and pandas write them, and
    with a stray quote read as the character it is.

    A field that opens a quote and does not close it (``1<TAB>"Stray quote`` with no closing quote, or
    one closed by another stray quote lines later) would run over the lines after it, losing their
    documents; the quote is taken for plain text when the quoted field does not end cleanly (a closing
    quote followed by more text, or the end of the file) or when the lines it runs over are rows of the
    file (:func:`_runs_over_rows`). That line is then read with its quotes as plain characters and the
    lines after it are read again; one warning per file names the lines.

    'id<TAB>text' / '1<TAB>"stray' / '2<TAB>next' -> ['id', 'text'], ['1', '"stray'], ['2', 'next']
    """
    lines = _Lines(text)
    quoted = csv.reader(lines, delimiter=delimiter, strict=True)
    width: int | None = None  # fields in the header
    numeric: list[bool] | None = None  # per column: a number in every row so far
    strays: list[str] = []  # the lines that opened a stray quote ('3 (to 9)': closed by another on line 9)
    while True:
        start = lines.number + 1
        try:
            row: list[str] | None = next(quoted)
        except StopIteration:
            break
        except csv.Error:  # (strict: a closing quote followed by more text, or the file ending inside quotes)
            row = None
        read = lines.take()
        shown = str(start)
        if row is not None and len(read) > 1 and width is not None and width > 1:
            # (a quoted field over several lines, closed cleanly: a stray quote if it ran over rows)
            if _runs_over_rows(read[1:], delimiter, width, numeric):
                row, shown = None, f"{start} (to {start + len(read) - 1})"
        if row is None:
            if len(read) > 1:
                strays.append(shown)
                lines.again(read[1:])
            row = next(csv.reader(read[:1], delimiter=delimiter, quoting=csv.QUOTE_NONE), [])
        if width is None:
            width = len(row)
        elif len(row) == width and (numeric is None or any(numeric)):
            numeric = [
                (numeric is None or numeric[j]) and _NUMBER.fullmatch(value.strip()) is not None
                for j, value in enumerate(row)
            ]
        yield row
    if strays:
        shown = ", ".join(strays[:5]) + (" ..." if len(strays) > 5 else "")
        one = len(strays) == 1
        warnings.warn(
            f"{item}: {'line' if one else 'lines'} {shown} {'opens' if one else 'open'} a quoted field that is not closed "
            f"on {'its' if one else 'their'} line, which would have run over the lines after it; read with the quotes as "
            "plain characters, as written (if the file quotes its fields, as csv and pandas write them, check the quotes there)",
            VocabxWarning,
            stacklevel=4,
        )


_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def _runs_over_rows(lines: list[str], delimiter: str, width: int, numeric: list[bool] | None) -> bool:
    """Whether the lines after the first that a quoted field ran over, closed cleanly, are rows of the file
    (a stray quote opened the field and another closed it) rather than the field's own lines.

    In a TSV, where text rarely holds a tab, one such line holding as many fields as the header is a row.
    In a CSV, where text holds commas, every such line must be a row: read on its own, as many fields as
    the header, and a number in each column that held one in every row before (an id, a count). Without
    such a column the quotes are trusted: a line of prose often holds as many commas as a row does.

    header 'id,text', rows before '1,a': '2,next' / '3,size 5"' -> True; 'BP 120/80, HR 70"' -> False;
    header 'title,text': 'BP 120/80, HR 70"' -> False
    """
    if delimiter == "\t":
        return any(line.rstrip("\r\n").count(delimiter) == width - 1 for line in lines)
    if not numeric or not any(numeric):
        return False
    lines = [line for line in lines if line.strip()]
    for line in lines:
        try:
            fields = next(csv.reader([line], delimiter=delimiter, strict=True), [])
        except csv.Error:
            fields = next(csv.reader([line], delimiter=delimiter, quoting=csv.QUOTE_NONE), [])
        if len(fields) != width:
            return False
        if numeric is not None and any(
            wanted and _NUMBER.fullmatch(value.strip()) is None for wanted, value in zip(numeric, fields)
        ):
            return False
    return bool(lines)


def _binary_reason(head: bytes) -> str | None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    for magic in _BINARY_MAGIC:
        if head.startswith(magic):
            return f"binary file (starts with {magic!r})"
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    if head and controls / len(head) > _BINARY_CONTROL_SHARE:
        return f"binary file ({controls} of its first {len(head)} bytes are control bytes)"
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def byte_progress(progress: Any, desc: str, total: int | None = None) -> Iterator[Callable[[int], Any] | None]:
    """What a library function's ``progress`` argument means, as a callable taking a byte count (or None).

    ``None`` or ``False``: no progress; ``True``: a tqdm bar of bytes (closed on exit); a callable (such as a
    bar's ``update``): called with the bytes just processed.
    """
    if progress is None or progress is False:
        yield None
    elif progress is True:
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=desc, unit="B", unit_scale=True) as bar:
            yield bar.update
    elif callable(progress):
        yield progress
    else:
        raise VocabxError(f"progress must be True, False, None or a callable taking a byte count (such as a tqdm bar's update), got {progress!r}")


def documents(texts: Any, *, what: str = "texts", text_field: str = "text") -> Iterable[str]:
    """The documents a Python caller passed, checked as they are read: ``None`` is no document and is
    skipped, anything else that is not ``str`` is an error naming it; a ``datasets`` dataset gives its
    ``text_field`` column. A :class:`TextStream` (from :func:`read_corpus`) is returned as it is.

    ["a", None, "b"] -> "a", "b";  "one text" -> VocabxError (a str is not a list of documents)
    """
    if isinstance(texts, TextStream):
        return texts
    refuse_one_text(texts, what)
    if texts is None or not hasattr(texts, "__iter__"):
        raise VocabxError(f"{what} must be a list or iterable of str documents, got {type(texts).__name__}")
    columns = getattr(texts, "column_names", None)
    if hasattr(texts, "map") and columns is not None:  # (a datasets Dataset, IterableDataset or DatasetDict)
        if isinstance(columns, dict):
            raise VocabxError(f"{what} is a DatasetDict of splits {', '.join(columns)}; pass one split, such as dataset[{next(iter(columns), 'train')!r}]")
        if text_field not in columns:
            packed = " (it is already tokenized: pass the dataset of texts it was made from)" if "input_ids" in columns else ""
            raise VocabxError(f"{what}: the dataset has no column {text_field!r}{packed}; columns present: {', '.join(columns) or 'none'}")
        plain = texts.with_format(None) if hasattr(texts, "with_format") else texts  # (a pandas or arrow format gives no str)
        texts = plain[text_field] if hasattr(plain, "__len__") else (row[text_field] for row in plain.select_columns([text_field]))
    return _checked_documents(iter(texts), what)


def refuse_one_text(texts: Any, what: str = "texts") -> None:
    """The error for one str (or bytes) given where a list of documents belongs: iterated, it would be
    read one character at a time."""
    if isinstance(texts, (str, bytes)):
        raise VocabxError(
            f"{what} is one {type(texts).__name__} of {len(texts)} characters, not a list of documents "
            f"(it would be read one character at a time); pass [text], or vocabx.read_corpus(PATH) for a file"
        )


def _checked_documents(texts: Iterator[Any], what: str) -> Iterator[str]:
    for i, text in enumerate(texts):
        if isinstance(text, str):
            yield text
        elif text is not None:
            shown = repr(text)[:60]
            raise VocabxError(f"{what}: document {i} is {type(text).__name__} ({shown}), not text; pass str documents (drop or convert the others)")
