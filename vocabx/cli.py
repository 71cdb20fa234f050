"""The ``vocabx`` command line: a thin map from command names to library functions.

Each command parses its flags, calls the library and prints. Heavy imports (torch, transformers) happen
inside the commands, so ``vocabx --help`` answers at once. Every command takes ``--json`` (one JSON object
as the last line of stdout), ``--quiet`` (no progress bars) and ``--debug`` (tracebacks on errors).
Errors are one line on stderr and exit code 2; warnings are one line each on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from typing import Any, Callable, Sequence

from vocabx import __version__
from vocabx.errors import VocabxError, VocabxWarning

Command = Callable[[argparse.Namespace], int]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def _add_corpus(parser: argparse.ArgumentParser, nargs: str = "+") -> None:
    parser.add_argument(
        "corpus",
        nargs=nargs,
        metavar="CORPUS",
        help="file, folder, glob, hf:NAME[:CONFIG][:SPLIT] or - (stdin); "
        ".txt .md .jsonl .json .csv .tsv .parquet, optionally .gz",
    )
    parser.add_argument("--text-field", default="text", help="JSON field or column holding the text (default: text)")
    parser.add_argument(
        "--line-docs", action="store_true", help="in .txt and .md files, one document per line (default: per file)"
    )


def _add_model(parser: argparse.ArgumentParser, flag: str = "--model") -> None:
    parser.add_argument(
        flag,
        default="smollm2-135m",
        dest="model",
        metavar="M",
        help="smollm2-135m (the embedded default), a local model folder, or a hub id",
    )
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow a hub model's own Python code to run"
    )


# ---------------------------------------------------------------------------------------------------
# Commands


def cmd_stats(args: argparse.Namespace) -> int:
    """Count documents, bytes, words and tokens of a corpus under a model's tokenizer."""
    from vocabx.corpus import read_corpus
    from vocabx.models import load_tokenizer
    from vocabx.stats import corpus_stats

    texts = read_corpus(args.corpus, text_field=args.text_field, line_docs=args.line_docs)
    tokenizer = load_tokenizer(args.model, trust_remote_code=args.trust_remote_code)
    with progress_bar(texts.approx_bytes, quiet=args.quiet, desc="stats") as bar:
        stats = corpus_stats(texts, tokenizer, progress=bar.update)
    result = {"model": args.model, **stats.as_dict(), "skipped": _skipped(texts.report)}
    rows = [
        ("corpus", " ".join(args.corpus)),
        ("model", args.model),
        ("docs", f"{stats.docs:,}"),
        ("bytes", f"{stats.bytes:,} ({stats.bytes / 1e6:.2f} MB)"),
        ("words", f"{stats.words:,}"),
        ("tokens", f"{stats.tokens:,}"),
        ("tokens per word", f"{stats.tokens_per_word:.3f}"),
        ("bytes per token", f"{stats.bytes_per_token:.3f}"),
    ]
    skipped = result["skipped"]
    if any(skipped.values()):
        rows.append(("skipped", ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in skipped.items() if v)))
    emit(args, result, table(rows))
    return 0


def _skipped(report: Any) -> dict[str, int]:
    return {
        "empty_docs": report.empty_docs,
        "empty_files": report.empty_files,
        "skipped_files": len(report.skipped_files),
        "bad_records": report.bad_records,
        "replaced_chars": report.replaced_chars,
        "nul_bytes": report.nul_bytes,
    }


COMMANDS: dict[str, tuple[Command, Callable[[argparse.ArgumentParser], None]]] = {}


def _stats_args(parser: argparse.ArgumentParser) -> None:
    _add_corpus(parser)
    _add_model(parser)


COMMANDS["stats"] = (cmd_stats, _stats_args)


# ---------------------------------------------------------------------------------------------------
# Output helpers


def table(rows: Sequence[tuple[str, str]]) -> str:
    """[("docs", "3"), ("tokens", "10")] -> 'docs    3\\ntokens  10'"""
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def emit(args: argparse.Namespace, result: dict, text: str) -> None:
    """Print the human-readable text, or with ``--json`` one JSON object as the last line."""
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(text)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(total: int | None, *, quiet: bool, desc: str, unit: str = "B") -> Any:
    """A tqdm bar on stderr, or a no-op when ``quiet`` or when stderr is not a terminal."""
    if quiet or not sys.stderr.isatty():
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, dynamic_ncols=True)


# ---------------------------------------------------------------------------------------------------
# Entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vocabx",
        description="Adapt a pretrained language model's vocabulary to a domain: analyze, extend, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"vocabx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (func, add_args) in COMMANDS.items():
        doc = (func.__doc__ or "").strip()
        child = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc)
        add_args(child)
        _add_common(child)
        child.set_defaults(func=func)
    return parser


def _format_warning(message: Warning | str, category: type, *_: object, **__: object) -> str:
    return f"vocabx: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    previous = warnings.formatwarning
    warnings.formatwarning = _format_warning  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", VocabxWarning)
            if not args.debug:
                _quiet_libraries()
            _log_to_stderr(args.debug)
            return args.func(args)
    except VocabxError as exc:
        if args.debug:
            raise
        print(f"vocabx: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vocabx: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure still gets one line; --debug shows where
        if args.debug:
            raise
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"vocabx: error: {type(exc).__name__}: {detail} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = previous  # type: ignore[assignment]


def _log_to_stderr(debug: bool) -> None:
    logger = logging.getLogger("vocabx")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("vocabx: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)


def _quiet_libraries() -> None:
    """Keep transformers' and datasets' info chatter off the user's terminal; warnings stay."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("DATASETS_VERBOSITY", "error")


if __name__ == "__main__":
    raise SystemExit(main())
