"""Write and read the analyzer's versioned artifacts (schema ``vocabx.report/1``).

``write_report`` takes the plain dict the analyzer builds and writes one folder:

- ``report.json``: the dict as it is, ``"schema"`` first; the file other stages read back;
- ``candidates.tsv``: one line per candidate, for spreadsheets and ``grep``;
- ``report.md``: the readable twin (summary, settings, recommendation, savings curve, top candidates);
- ``savings_curve.png`` and ``fragmentation.png``: the two plots;
- ``report.html``: one self-contained page (inline CSS, plots as data URIs) that opens offline.

The folder appears whole or not at all: everything is written into a hidden temporary folder beside it,
which is renamed into place at the end. ``read_report`` loads ``report.json`` back and checks its schema.

In ``candidates.tsv`` a backslash, double quote, tab, newline or carriage return inside a field is written as
``\\\\``, ``\\"``, ``\\t``, ``\\n`` or ``\\r``, and the other characters that ``str.splitlines`` breaks on as ``\\uXXXX``, so
each candidate is exactly one line. Everywhere a reader looks, a surface is shown with its control
characters escaped and its leading and trailing spaces as ``␣`` (``" of the"`` reads ``␣of the``).

What it leaves out: computing anything. Candidates, curves, the recommendation and the fragmentation
histogram come from the analyzer; this module only lays them out. Matplotlib is imported on first use,
so ``import vocabx`` stays fast.
"""

from __future__ import annotations

import base64
import html
import io
import json
import shlex
from itertools import groupby
from pathlib import Path
from typing import Any, Iterable, Sequence

from vocabx.errors import VocabxError, read_json
from vocabx.outputs import staged_dir

SCHEMA = "vocabx.report/1"

REPORT_JSON = "report.json"
CANDIDATES_TSV = "candidates.tsv"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
SAVINGS_PNG = "savings_curve.png"
FRAGMENTATION_PNG = "fragmentation.png"

TSV_COLUMNS = (
    "rank",
    "token",
    "surface",
    "kind",
    "count",
    "doc_count",
    "groups",
    "base_pieces",
    "n_base_pieces",
    "tokens_saved",
    "cumulative_saved",
    "score",
    "specificity",
    "example",
)

MD_TOP_PER_KIND = 50
DOC_COUNT_BOUND = (
    "docs ≥ n: at least n documents (a subword joining words found in more documents than the counter "
    "keeps for each word; `doc_count_exact` is false in report.json)."
)
HTML_TOP = 500
# Beyond this many points the curve table shows powers of two, the recommendation and the end.
CURVE_TABLE_ALL_UP_TO = 20
EXAMPLE_CHARS_MD = 80
FRAGMENT_BUCKETS = ("1", "2", "3", "4", "5", "6", "7", "8+")
DASH = "–"

# ---------------------------------------------------------------------------------------------------
# Writing and reading


def write_report(report: dict, out_dir: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Write the report's six files into ``out_dir`` and return ``{file name: path}``.

    ``out_dir`` must be absent or empty; with ``overwrite=True`` a previous report folder (one that holds
    a ``report.json``) is replaced. Nothing appears at ``out_dir`` unless every file was written.
    """
    report = _with_schema(report)
    with staged_dir(out_dir, overwrite=overwrite, marker=REPORT_JSON, what="report") as staging:
        names = _write_files(report, staging)
    return {name: Path(out_dir) / name for name in names}


def read_report(path: str | Path) -> dict:
    """Load ``report.json`` from a report folder or from the file itself, checking its schema."""
    path = Path(path)
    file = path / REPORT_JSON if path.is_dir() else path
    if not file.exists():
        raise VocabxError(f"no report at {file}: pass the folder that `vocabx analyze -o` wrote")
    data = read_json(file, "rerun `vocabx analyze` to rewrite it", what="report ")
    found = data.get("schema") if isinstance(data, dict) else None
    if found != SCHEMA:
        raise VocabxError(
            f"report {file} has schema {found!r}, expected {SCHEMA!r}; "
            "rerun `vocabx analyze` with this vocabx version to rewrite it"
        )
    return data


def _with_schema(report: dict) -> dict:
    """The report with ``"schema"`` as its first key; a report of another schema is a caller's bug."""
    found = report.get("schema", SCHEMA)
    if found != SCHEMA:
        raise ValueError(f"write_report writes schema {SCHEMA!r}, the report says {found!r}")
    return {"schema": SCHEMA, **{key: value for key, value in report.items() if key != "schema"}}


def _write_files(report: dict, folder: Path) -> list[str]:
    plots = {SAVINGS_PNG: savings_curve_png(report), FRAGMENTATION_PNG: fragmentation_png(report)}
    texts = {
        REPORT_JSON: json.dumps(report, indent=2, ensure_ascii=False) + "\n",
        CANDIDATES_TSV: candidates_tsv(report),
        REPORT_MD: report_markdown(report),
    }
    for name, text in texts.items():
        (folder / name).write_bytes(text.encode("utf-8"))
    for name, png in plots.items():
        (folder / name).write_bytes(png)
    (folder / REPORT_HTML).write_bytes(report_html(report, plots).encode("utf-8"))
    return [*texts, *plots, REPORT_HTML]


# ---------------------------------------------------------------------------------------------------
# Formatting shared by every view


def readable(text: str) -> str:
    """A string as a reader should see it: control characters escaped, edge spaces shown as ``␣``.

    >>> readable(" of the")
    '␣of the'
    >>> readable("a\\tb\\n")
    'a\\\\tb\\\\n'
    """
    shown = "".join(_visible(char) for char in text)
    core = shown.strip(" ")
    if not core:
        return "␣" * len(shown)
    start = shown.index(core)
    return "␣" * start + core + "␣" * (len(shown) - start - len(core))


_NAMED_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _visible(char: str) -> str:
    if char == " " or char.isprintable():
        return char
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _number(value: Any) -> str:
    """1234 -> '1,234'; 1234.0 -> '1,234'; 2.345 -> '2.35'; None -> '–'."""
    if value is None:
        return DASH
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "∞" if value > 0 else "-∞"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _percent(fraction: Any) -> str:
    """0.2104 -> '21.04%'; None -> '–'."""
    return DASH if fraction is None else f"{100 * fraction:.2f}%"


def _share(part: Any, whole: Any) -> Any:
    return part / whole if part is not None and whole else None


def _candidates(report: dict) -> list[dict]:
    return list(report.get("candidates") or [])


def _kinds(report: dict) -> list[str]:
    """The kinds the analyzer looked for, then any other kind that appears among the candidates."""
    kinds = list((report.get("settings") or {}).get("kinds") or [])
    for candidate in _candidates(report):
        kind = candidate.get("kind")
        if kind and kind not in kinds:
            kinds.append(kind)
    return kinds


def _kind_counts(report: dict) -> str:
    """'3,120 (1,000 word, 1,500 subword, 620 phrase)'"""
    candidates = _candidates(report)
    parts = [f"{sum(c.get('kind') == kind for c in candidates):,} {kind}" for kind in _kinds(report)]
    return f"{len(candidates):,}" + (f" ({', '.join(parts)})" if parts else "")


def _model_line(report: dict) -> str:
    """'smollm2-135m (byte_bpe, 49,152 tokens, hidden size 576, tied embeddings)'"""
    model = report.get("model") or {}
    details = [
        model.get("family"),
        f"{model['vocab_size']:,} tokens" if model.get("vocab_size") else None,
        f"hidden size {model['hidden_size']:,}" if model.get("hidden_size") else None,
        {True: "tied embeddings", False: "untied embeddings"}.get(model.get("tied")),
    ]
    details = [d for d in details if d]
    return str(model.get("spec") or "unknown model") + (f" ({', '.join(details)})" if details else "")


def _corpus_table(report: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows comparing the analyzed corpus with the reference and held-out parts present."""
    columns = [("analyzed corpus", report.get("corpus") or {})]
    if report.get("reference"):
        columns.append(("reference corpus", report["reference"]))
    if report.get("holdout"):
        columns.append((_held_label(report, "held out"), report["holdout"]))
    fields = [("docs", "docs"), ("bytes", "bytes"), ("words", "words"), ("tokens", "tokens")]
    rows = [["sources", *(" ".join(map(str, stats.get("sources") or [])) or DASH for _, stats in columns)]]
    rows += [[label, *(_number(stats.get(key)) for _, stats in columns)] for label, key in fields]
    rows.append(["tokens per word", *(_tokens_per_word(stats) for _, stats in columns)])
    return ["", *(name for name, _ in columns)], rows


def name_groups(groups: list, shown: int = 3) -> str:
    """['a', 'b'] -> 'a, b'; 30 names -> 'a, b, c and 27 more' (a label stays one short line)."""
    names = [str(g) for g in groups]
    if len(names) <= shown + 1:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def _held_label(report: dict, plain: str = "held-out documents") -> str:
    """How the held-out part is named: ``plain``, or the groups held out whole (``--holdout-groups``)."""
    groups = (report.get("holdout") or {}).get("groups")
    if not groups:
        return plain
    return f"held-out groups: {name_groups(groups)}"


def _tokens_per_word(stats: dict) -> str:
    value = stats.get("tokens_per_word")
    if value is None:
        value = _share(stats.get("tokens"), stats.get("words"))
    return DASH if value is None else f"{value:.3f}"


def _recommendation(report: dict) -> str:
    """One sentence: the recommended N, what it saves on both corpora, and what it costs."""
    recommended = report.get("recommended") or {}
    n = recommended.get("n", report.get("recommended_n"))
    if not n:  # (None, or the analyzer's N = 0 when nothing is worth adding)
        return "No recommendation: no candidates were found."
    sentence = f"N = {n:,} new tokens"
    if recommended.get("fraction") is not None:
        sentence += f" save {_percent(recommended['fraction'])} of the analyzed corpus's tokens"
        if recommended.get("holdout_fraction") is not None:
            sentence += f" ({_percent(recommended['holdout_fraction'])} on {_held_label(report)})"
        if recommended.get("reference_fraction") is not None:
            sentence += f" and rewrite {_percent(recommended['reference_fraction'])} of the reference corpus's"
    if recommended.get("extra_parameters") is not None:
        sentence += f", at a cost of {recommended['extra_parameters']:,} extra parameters"
        mb = recommended.get("extra_mb")
        if mb is not None:
            # (the analyzer rounds to 0.01 MB: a few rows read "under 0.01 MB", not "0.00 MB")
            sentence += " (under 0.01 MB)" if mb < 0.005 and recommended["extra_parameters"] else f" ({mb:.2f} MB)"
    return sentence + "."


def _curve_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the savings curve, held-out figures beside the analyzed ones."""
    curve = [p for p in report.get("savings_curve") or [] if p.get("n") is not None]
    held = {p["n"]: p for p in report.get("holdout_curve") or [] if p.get("n") is not None}
    ref = {p["n"]: p for p in report.get("reference_curve") or [] if p.get("n") is not None}
    header = ["N", "tokens saved", "saved"]
    if held:
        header += ["held-out tokens saved", "held-out saved"]
    if ref:
        header += ["reference saved"]
    rows = []
    for point in _curve_sample(curve, report.get("recommended_n")):
        row = [_number(point["n"]), _number(point.get("tokens_saved")), _percent(point.get("fraction"))]
        if held:
            other = held.get(point["n"], {})
            row += [_number(other.get("tokens_saved")), _percent(other.get("fraction"))]
        if ref:
            row.append(_percent(ref.get(point["n"], {}).get("fraction")))
        rows.append(row)
    return header, rows


def _curve_sample(curve: list[dict], recommended_n: Any) -> list[dict]:
    """A short curve whole; a long one at N = 1, 2, 4, ..., the recommended N and its last point."""
    if len(curve) <= CURVE_TABLE_ALL_UP_TO:
        return curve
    last = curve[-1]["n"]
    return [p for p in curve if p["n"] & (p["n"] - 1) == 0 or p["n"] in (recommended_n, last)]


def _settings_rows(report: dict) -> list[list[str]]:
    return [[key, _setting(value)] for key, value in (report.get("settings") or {}).items()]


def _setting(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return _number(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def reproduce_command(report: dict) -> str:
    """The ``vocabx analyze`` command line that asks for the same analysis again.

    Each setting becomes its flag (``min_count`` -> ``--min-count 5``; a true boolean a bare flag, a false
    one left out; a list comma-separated); ``REPORT_DIR`` stands for a fresh output folder.
    """
    sources = (report.get("corpus") or {}).get("sources") or ["CORPUS"]
    counted = report.get("counts_file")  # (analyzed from merged counts: the file is the input, not a corpus)
    words = ["vocabx", "analyze", *(["--counts", str(counted)] if counted else sources)]
    words += ["--model", str((report.get("model") or {}).get("spec") or "M"), "-o", "REPORT_DIR"]
    if report.get("reference"):
        words += ["--reference", *(report["reference"].get("sources") or [])]
    for key, value in (report.get("settings") or {}).items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            words.append(flag)
        elif value is not None and value is not False:
            words += [flag, ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)]
    return shlex.join(map(str, words))


def _notes(report: dict) -> list[str]:
    notes = [str(note) for note in report.get("notes") or []]
    if not _candidates(report) and not notes:
        notes.append("No candidates: the tokenizer already keeps this corpus's words whole.")
    return notes


# ---------------------------------------------------------------------------------------------------
# candidates.tsv

_TSV_ESCAPES = {
    ord("\\"): "\\\\",
    ord('"'): '\\"',  # (a field that starts with a quote would open a quoted field in CSV-style readers)
    ord("\t"): "\\t",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    # the other characters str.splitlines breaks on
    **{code: f"\\u{code:04x}" for code in (0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)},
}


def candidates_tsv(report: dict) -> str:
    """The header line, then one line per candidate in rank order."""
    lines = ["\t".join(TSV_COLUMNS)]
    for candidate in _candidates(report):
        lines.append("\t".join(_tsv_field(value) for value in _tsv_values(candidate)))
    return "\n".join(lines) + "\n"


def _tsv_values(candidate: dict) -> list[Any]:
    pieces = candidate.get("base_pieces")
    values = {
        **candidate,
        "base_pieces": " ".join(map(str, pieces)) if pieces is not None else None,
        "n_base_pieces": len(pieces) if pieces is not None else None,
    }
    return [values.get(column) for column in TSV_COLUMNS]


def _tsv_field(value: Any) -> str:
    """None -> ''; 'a\\tb' -> 'a\\\\tb'."""
    return "" if value is None else str(value).translate(_TSV_ESCAPES)


# ---------------------------------------------------------------------------------------------------
# report.md


def report_markdown(report: dict) -> str:
    """The readable twin of ``report.json``."""
    model = (report.get("model") or {}).get("spec") or "unknown model"
    sources = ", ".join(map(str, (report.get("corpus") or {}).get("sources") or [])) or "unknown corpus"
    corpus_header, corpus_rows = _corpus_table(report)
    curve_header, curve_rows = _curve_rows(report)
    parts = [
        f"# vocabx report: {_md_text(model)} on {_md_text(sources)}",
        _md_text(_provenance(report)),
        "## Summary",
        f"Model: {_md_text(_model_line(report))}.\n\nCandidates found: {_kind_counts(report)}.",
        _md_table(corpus_header, [[_md_text(cell) for cell in row] for row in corpus_rows]),
        "## Recommended number of new tokens",
        _md_text(_recommendation(report)),
        "## Savings curve",
        _md_table(curve_header, curve_rows) if curve_rows else "No savings curve: no candidates.",
        "## Settings",
        _md_table(["setting", "value"], [[_md_text(c) for c in row] for row in _settings_rows(report)], (0, 1)),
        *_md_candidates(report),
        "## Notes",
        "\n".join(f"- {_md_text(note)}" for note in _notes(report)) or "None.",
        "## How to reproduce",
        f"```sh\n{reproduce_command(report)}\n```",
    ]
    return "\n\n".join(parts) + "\n"


def _provenance(report: dict) -> str:
    """'vocabx 0.1.0, 2026-11-26T18:00:00Z, schema vocabx.report/1.'"""
    parts = [f"vocabx {report['vocabx_version']}" if report.get("vocabx_version") else None, report.get("created")]
    return ", ".join(str(p) for p in [*parts, f"schema {SCHEMA}"] if p) + "."


def _md_candidates(report: dict) -> list[str]:
    candidates = _candidates(report)
    if not candidates:
        return ["## Candidates", "No candidates."]
    corpus_tokens = (report.get("corpus") or {}).get("tokens")
    header = ["rank", "token", "surface", "count", "docs", "base pieces", "saved", "cum. saved", "score"]
    header += ["specificity", "example"]
    parts = []
    for kind in _kinds(report):
        chosen = [c for c in candidates if c.get("kind") == kind][:MD_TOP_PER_KIND]
        parts.append(f"## Top {kind} candidates")
        rows = [_md_candidate_row(c, corpus_tokens) for c in chosen]
        table_header, rows, text_columns = _with_groups(report, header, rows, chosen, after="docs", text_columns=(1, 2, 5, 10))
        parts.append(_md_table(table_header, rows, text_columns=text_columns) if rows else f"No {kind} candidates.")
        if any(c.get("doc_count_exact") is False for c in chosen):
            parts.append(DOC_COUNT_BOUND)
    return parts


def _with_groups(
    report: dict, header: list[str], rows: list[list[Any]], candidates: list[dict], *, after: str, text_columns: tuple[int, ...]
) -> tuple[list[str], list[list[Any]], tuple[int, ...]]:
    """The table with a "groups" column after ``after`` when the analysis was grouped (``--min-groups``)."""
    if "groups" not in (report.get("corpus") or {}):
        return header, rows, text_columns
    at = header.index(after) + 1
    rows = [row[:at] + [_number(c.get("groups"))] + row[at:] for row, c in zip(rows, candidates)]
    return header[:at] + ["groups"] + header[at:], rows, tuple(i + 1 if i >= at else i for i in text_columns)


def _doc_count(candidate: dict) -> str:
    """A candidate's document count, "≥ n" where it is a lower bound (a subword joining words too
    widespread for the counter to keep all their documents)."""
    shown = _number(candidate.get("doc_count"))
    return f"≥ {shown}" if candidate.get("doc_count_exact") is False else shown


def _md_candidate_row(candidate: dict, corpus_tokens: Any) -> list[str]:
    return [
        _number(candidate.get("rank")),
        _md_code(candidate.get("token")),
        _md_code(candidate.get("surface")),
        _number(candidate.get("count")),
        _doc_count(candidate),
        " ".join(_md_code(piece) for piece in candidate.get("base_pieces") or []) or DASH,
        _number(candidate.get("tokens_saved")),
        _percent(_share(candidate.get("cumulative_saved"), corpus_tokens)),
        _number(candidate.get("score")),
        _number(candidate.get("specificity")),
        _md_text(_shorten(candidate.get("example"), EXAMPLE_CHARS_MD)),
    ]


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]], text_columns: Sequence[int] = (0,)) -> str:
    """Cells come formatted; ``text_columns`` are left-aligned and the others (numbers) right-aligned."""
    rule = [":--" if i in text_columns else "--:" for i in range(len(header))]
    header = [_md_text(cell) if cell else "" for cell in header]  # (a held-out group's name can hold a "|")
    return "\n".join("| " + " | ".join(row) + " |" for row in [header, rule, *rows])


def _md_code(text: Any) -> str:
    """A token as a code span, so ``<``, ``&``, ``*`` and ``_`` stay literal; '–' when absent."""
    if not text:
        return DASH
    shown = readable(str(text))
    if "\\|" in shown:
        # GFM reads "\\|" as an escaped backslash and then a pipe that ends the cell, and a code span
        # cannot escape the backslash: an HTML code element whose punctuation is all character references.
        return "<code>" + "".join(c if c.isalnum() or c == " " else f"&#{ord(c)};" for c in shown) + "</code>"
    shown = shown.replace("|", "\\|")  # GFM ends a table cell at any unescaped pipe
    fence = "`" * (_longest_run(shown, "`") + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def _longest_run(text: str, char: str) -> int:
    """('a``b`', '`') -> 2"""
    return max((len(list(run)) for c, run in groupby(text) if c == char), default=0)


_MD_SPECIAL = str.maketrans({char: "\\" + char for char in "\\`*_[]<>|&#"})


def _md_text(text: Any) -> str:
    """Plain text with Markdown's active characters backslash-escaped, on one line."""
    return readable(str(text)).translate(_MD_SPECIAL) if text is not None else DASH


def _shorten(text: Any, limit: int) -> Any:
    if text is None or len(str(text)) <= limit:
        return text
    return str(text)[: limit - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------------------
# Plots


def savings_curve_png(report: dict) -> bytes:
    """Share of tokens saved against N (log axis): analyzed corpus, held-out documents, reference corpus,
    recommended N."""
    fig, ax = _figure()
    curves = [
        ("analyzed corpus", report.get("savings_curve")),
        (_held_label(report), report.get("holdout_curve")),
        ("reference corpus", report.get("reference_curve")),
    ]
    drawn = False
    for label, curve in curves:
        points = [(p["n"], p["fraction"]) for p in curve or [] if p.get("n") and p.get("fraction") is not None]
        if points:
            ax.plot(*zip(*points), label=label, linewidth=2)
            drawn = True
    if not drawn:
        return _empty_plot(fig, ax, "No candidates, so no savings curve.")
    _mark_recommended(ax, report)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(_thousands_formatter())  # 1,000 reads faster than 10^3
    ax.set_xlabel("new tokens added, N (log scale)")
    ax.set_ylabel("share of tokens saved")
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.set_ylim(bottom=0)
    ax.set_title(_mpl_text(f"Token savings: {(report.get('model') or {}).get('spec') or 'model'}"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left")
    return _png(fig)


def _mark_recommended(ax: Any, report: dict) -> None:
    n = report.get("recommended_n")
    if not n:
        return
    # (on the held-out curve when there is one: the knee is taken there, and it is what N buys on unseen text)
    recommended = report.get("recommended") or {}
    fraction = recommended.get("holdout_fraction")
    if fraction is None:
        fraction = recommended.get("fraction")
    if fraction is None:
        fraction = next((p.get("fraction") for p in report.get("savings_curve") or [] if p.get("n") == n), None)
    ax.axvline(n, color="grey", linestyle=":", linewidth=1)
    if fraction is not None:
        ax.plot([n], [fraction], "o", color="black", markersize=7, label=f"recommended N = {n:,}")


def fragmentation_png(report: dict) -> bytes:
    """Share of words split into 1, 2, ... 8+ pieces; reference bars beside the domain's when present."""
    fig, ax = _figure()
    fragmentation = report.get("fragmentation") or {}
    series = [("analyzed corpus", fragmentation.get("domain")), ("reference corpus", fragmentation.get("reference"))]
    series = [(label, counts) for label, counts in series if counts and sum(counts.values())]
    if not series:
        return _empty_plot(fig, ax, "No fragmentation figures.")
    # The full 1..8+ axis even when some buckets are empty, so plots of different corpora line up.
    buckets = sorted({*FRAGMENT_BUCKETS, *(key for _, counts in series for key in counts)}, key=_bucket_order)
    width = 0.8 / len(series)
    for i, (label, counts) in enumerate(series):
        total = sum(counts.values())
        shares = [counts.get(bucket, 0) / total for bucket in buckets]
        positions = [x + (i - (len(series) - 1) / 2) * width for x in range(len(buckets))]
        bars = ax.bar(positions, shares, width=width, label=label)
        ax.bar_label(bars, labels=[_bar_label(share) for share in shares], fontsize=7, padding=2)
    ax.set_xticks(range(len(buckets)), buckets)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.1)  # room for the labels above the tallest bar
    ax.set_xlabel("pieces per word")
    ax.set_ylabel("share of words")
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.set_title("How the tokenizer splits words")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper right")
    return _png(fig)


def _bar_label(share: float) -> str:
    """0.179 -> '17.9%'; 0.0004 -> '<0.1%' (a rare bucket is not an empty one); 0 -> ''."""
    if share == 0:
        return ""
    return "<0.1%" if share < 0.0005 else f"{100 * share:.1f}%"


def _bucket_order(bucket: str) -> tuple[int, str]:
    """'8+' sorts after '7' and before '9'; keys that are not counts go last."""
    digits = bucket.rstrip("+")
    return (int(digits), bucket) if digits.isdigit() else (1 << 30, bucket)


def _figure() -> tuple[Any, Any]:
    # The Agg canvas directly, not pyplot: no global figure registry to leak into, and no GUI backend
    # chosen behind the caller's back.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _empty_plot(fig: Any, ax: Any, message: str) -> bytes:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=12)
    ax.set_axis_off()
    return _png(fig)


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0)


def _thousands_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}")


def _mpl_text(text: str) -> str:
    """A label with matplotlib's mathtext switched off ('$' pairs would otherwise be parsed as TeX)."""
    return text.replace("$", r"\$")


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    # No creation-time or version metadata: the same report gives the same bytes.
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------
# report.html


class _Html(str):
    """Markup built here from escaped parts; every other string is escaped on the way in."""


def _esc(value: Any) -> _Html:
    return value if isinstance(value, _Html) else _Html(html.escape(str(value), quote=True))


def _tag(name: str, content: Any = "", cls: str | None = None, **attrs: str) -> _Html:
    attrs = {"class": cls, **attrs} if cls else attrs
    rendered = "".join(f' {key}="{_esc(value)}"' for key, value in attrs.items())
    return _Html(f"<{name}{rendered}>{_esc(content)}</{name}>")


def _join(parts: Iterable[Any], sep: str = "") -> _Html:
    return _Html(sep.join(_esc(part) for part in parts))


_KIND_CLASSES = {"word": "kind-word", "subword": "kind-subword", "phrase": "kind-phrase"}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
.muted { color: #59636e; font-size: .9rem; }
.callout { background: #f0f6ff; border-left: 4px solid #2f6feb; padding: .6rem 1rem; }
table { border-collapse: collapse; font-size: .88rem; margin: .5rem 0; }
th, td { border-bottom: 1px solid #e5e7eb; padding: .25rem .6rem; text-align: right; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f6f8fa;
       padding: 0 .2rem; border-radius: 3px; white-space: pre; }
.example { color: #59636e; max-width: 28rem; }
.kind { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .8rem; font-weight: 600; }
.kind-word { background: #dbeafe; color: #1e40af; } .kind-subword { background: #fef3c7; color: #92400e; }
.kind-phrase { background: #dcfce7; color: #166534; } .kind-other { background: #e5e7eb; color: #374151; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; } .plots img { max-width: 100%; height: auto; }
pre { background: #f6f8fa; padding: .6rem 1rem; overflow-x: auto; }
"""


def report_html(report: dict, plots: dict[str, bytes]) -> str:
    """One self-contained page: inline CSS, the plots as base64 data URIs, no external resources."""
    model = (report.get("model") or {}).get("spec") or "unknown model"
    sources = ", ".join(map(str, (report.get("corpus") or {}).get("sources") or [])) or "unknown corpus"
    title = f"vocabx report: {model} on {sources}"
    body = [
        _tag("h1", title),
        _tag("p", _provenance(report), "muted"),
        _tag("h2", "Summary"),
        _tag("p", f"Model: {_model_line(report)}. Candidates found: {_kind_counts(report)}."),
        _html_table(*_corpus_table(report)),
        _tag("p", _recommendation(report), "callout"),
        _tag("div", _join(_html_image(name, png) for name, png in plots.items()), "plots"),
        _tag("h2", "Savings curve"),
        _html_curve(report),
        _tag("h2", "Settings"),
        _html_table(["setting", "value"], _settings_rows(report), text_columns=(0, 1)),
        *_html_candidates(report),
        _tag("h2", "Notes"),
        _tag("ul", _join(_tag("li", note) for note in _notes(report))),
        _tag("h2", "How to reproduce"),
        _tag("pre", _tag("code", reproduce_command(report))),
    ]
    head = _join(
        [
            _Html('<meta charset="utf-8">'),
            _Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
            _tag("title", title),
            _tag("style", _Html(_CSS)),
        ]
    )
    lines = ["<!DOCTYPE html>", '<html lang="en">', f"<head>{head}</head>", "<body>", *body, "</body>", "</html>"]
    return "\n".join(lines) + "\n"


def _html_curve(report: dict) -> _Html:
    header, rows = _curve_rows(report)
    return _html_table(header, rows) if rows else _tag("p", "No savings curve: no candidates.")


def _html_image(name: str, png: bytes) -> _Html:
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return _Html(f'<img src="{uri}" alt="{_esc(name)}">')


def _html_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], text_columns: Sequence[int] = (0,)) -> _Html:
    """A table whose ``text_columns`` are left-aligned and the others (numbers) right-aligned."""

    def row(cells: Sequence[Any], tag: str) -> _Html:
        return _tag("tr", _join(_tag(tag, c, "text" if i in text_columns else None) for i, c in enumerate(cells)))

    return _tag("table", _join([_tag("thead", row(header, "th")), _tag("tbody", _join(row(r, "td") for r in rows))]))


def _html_candidates(report: dict) -> list[_Html]:
    candidates = _candidates(report)
    heading = _tag("h2", "Candidates")
    if not candidates:
        return [heading, _tag("p", "No candidates.")]
    shown = candidates[:HTML_TOP]
    note = f"All {len(candidates):,} candidates, in rank order"
    if len(candidates) > len(shown):
        note = f"The top {len(shown):,} of {len(candidates):,} candidates; all of them are in {CANDIDATES_TSV}"
    header = ["rank", "token", "surface", "kind", "count", "docs", "base pieces", "saved", "cum. saved", "score"]
    header += ["specificity", "example"]
    corpus_tokens = (report.get("corpus") or {}).get("tokens")
    rows = [_html_candidate_row(c, corpus_tokens) for c in shown]
    header, rows, text_columns = _with_groups(report, header, rows, shown, after="docs", text_columns=(1, 2, 3, 6, 11))
    if any(c.get("doc_count_exact") is False for c in shown):
        note += ". " + DOC_COUNT_BOUND.rstrip(".")
    return [heading, _tag("p", note + ".", "muted"), _html_table(header, rows, text_columns=text_columns)]


def _html_candidate_row(candidate: dict, corpus_tokens: Any) -> list[Any]:
    return [
        _number(candidate.get("rank")),
        _html_code(candidate.get("token")),
        _html_surface(candidate),
        _html_kind(candidate.get("kind")),
        _number(candidate.get("count")),
        _doc_count(candidate),
        _join((_html_code(piece) for piece in candidate.get("base_pieces") or []), " "),
        _number(candidate.get("tokens_saved")),
        _percent(_share(candidate.get("cumulative_saved"), corpus_tokens)),
        _number(candidate.get("score")),
        _number(candidate.get("specificity")),
        _tag("div", readable(str(candidate.get("example") or "")), "example"),
    ]


def _html_code(text: Any) -> _Html:
    return _tag("code", readable(str(text))) if text else _Html(DASH)


def _html_surface(candidate: dict) -> _Html:
    surface = _html_code(candidate.get("surface"))
    variants = [readable(str(v)) for v in candidate.get("variants") or []]
    if not variants:
        return surface
    return _join([surface, _tag("div", "also " + ", ".join(variants), "muted")])


def _html_kind(kind: Any) -> _Html:
    return _tag("span", kind or DASH, "kind " + _KIND_CLASSES.get(kind, "kind-other"))
