"""The ``vocabx`` command line: a thin map from command names to library functions.

Each command parses its flags, calls the library and prints. Heavy imports (torch, transformers) happen
inside the commands, so ``vocabx --help`` answers at once. Every command takes ``--json`` (one JSON object
as the last line of stdout), ``--quiet`` (no progress bars) and ``--debug`` (tracebacks on errors).
Errors are one line on stderr and exit code 2; warnings are one line each on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

from vocabx import __version__
from vocabx.errors import VocabxError, VocabxWarning, check_holdout

# Exit codes: 0 done; 1 `vocabx check` found a broken guarantee; 2 bad input or usage (the one-line
# error names it); 3 an unexpected failure (rerun with --debug for the traceback); 130 interrupted.
EXIT_BROKEN = 1
EXIT_BAD_INPUT = 2
EXIT_FAILURE = 3
EXIT_PIPE_CLOSED = 141  # (as a shell reports a command that SIGPIPE ended)

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


def _read(args: argparse.Namespace, sources: Any, role: str | None = None, **kwargs: Any) -> Any:
    """The documents of ``sources`` read with the command's --text-field and --line-docs (``role``: the
    flag that named them, which the errors name)."""
    from vocabx.corpus import read_corpus

    return read_corpus(sources, text_field=args.text_field, line_docs=args.line_docs, role=role, **kwargs)


def _read_list(args: argparse.Namespace, sources: Any, role: str) -> list[str] | None:
    """The documents of an optional corpus flag as a list, or None where the flag was not given."""
    return list(_read(args, sources, role)) if sources else None


def _add_model(parser: argparse.ArgumentParser, flag: str = "--model", help: str = "smollm2-135m (the embedded default), a local model folder, or a hub id") -> None:
    parser.add_argument(flag, default="smollm2-135m", dest="model", metavar="M", help=help)
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow a hub model's own Python code to run"
    )


# ---------------------------------------------------------------------------------------------------
# Commands


def cmd_stats(args: argparse.Namespace) -> int:
    """Count documents, bytes, words and tokens of a corpus under a model's tokenizer."""
    from vocabx.models import load_tokenizer
    from vocabx.stats import corpus_stats

    texts = _read(args, args.corpus)
    tokenizer = load_tokenizer(args.model, trust_remote_code=args.trust_remote_code)
    with progress_bar(texts.approx_bytes, quiet=args.quiet, desc="stats") as bar:
        stats = corpus_stats(texts, tokenizer, progress=bar.update)
    result = {"corpus": list(args.corpus), "model": args.model, **stats.as_dict(), "skipped": _skipped(texts.report)}
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


def _model_info(spec: str, tokenizer: Any) -> dict:
    """Size facts of a model for the report's cost estimate, read from its config alone."""
    from transformers import AutoConfig

    from vocabx.models import resolve_model

    info: dict[str, Any] = {"spec": spec, "vocab_size": len(tokenizer)}
    try:
        config = AutoConfig.from_pretrained(resolve_model(spec))
    except (OSError, ValueError):
        return info
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    info["hidden_size"] = getattr(text, "hidden_size", None)
    info["tied"] = bool(getattr(config, "tie_word_embeddings", True))
    info["embedding_rows"] = getattr(text, "vocab_size", None)
    return info


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        i, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise VocabxError(f"--shard must be I/N such as 0/4, got {value!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise VocabxError(f"--shard I/N needs 0 <= I < N, got {value!r}")
    return i, n


def _count_shard(args: argparse.Namespace, texts: Any, space: Any, shard: tuple[int, int], holdout: float | None, count_kwargs: dict) -> int:
    """Count one shard of the corpus (documents I, I+N, ...) into a counts file in -o."""
    from vocabx.analyze import count_corpus, split_holdout

    i, n = shard
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise VocabxError(f"-o {args.output} is a file; --shard writes its counts files into a folder: pick another -o")
    mine = (t for k, t in enumerate(texts) if k % n == i)
    train, held_texts = split_holdout(mine, holdout, args.seed) if holdout else (mine, [])
    with progress_bar(None, quiet=args.quiet, desc=f"counting shard {i}/{n}") as bar:
        counts = count_corpus(train, space, progress=bar.update, **count_kwargs)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "model": args.model, "shard": f"{i}/{n}", "holdout": holdout, "seed": args.seed, "sources": list(args.corpus),
        # (what the counts hold: shards counted otherwise do not merge)
        "max_phrase_words": count_kwargs["max_phrase_words"], "phrases": count_kwargs["phrases"],
    }
    if held_texts:
        held_path = out / f"holdout-{i}-of-{n}.counts.json.gz"
        count_corpus(held_texts, space, runs=True, **count_kwargs).save(held_path, meta={**meta, "role": "holdout"})
        meta["holdout_file"] = held_path.name  # (beside the counts file, wherever the folder is moved)
    path = out / f"counts-{i}-of-{n}.counts.json.gz"
    counts.save(path, meta=meta)
    emit(args, {"counts": str(path), "docs": counts.docs, "holdout_docs": len(held_texts)}, f"wrote {path} ({counts.docs:,} documents)")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    """Rank the words, subwords and phrases of a domain corpus worth adding, with a held-out savings curve.

    Writes report.json (schema vocabx.report/1), candidates.tsv, report.md, report.html and PNG plots
    into -o. For corpora too large for one machine, count shards with --shard I/N (each writes a counts
    file), merge them with `vocabx merge-counts`, and analyze the merge with --counts; a CORPUS given
    with --counts (the one counted) is read only for the candidates' examples.
    """
    from vocabx.analyze import Counts, SelectSettings, TokenSpace, analyze, holdout_test
    from vocabx.models import load_tokenizer
    from vocabx.outputs import check_output_dir
    from vocabx.report import write_report

    settings = SelectSettings(
        max_new=args.max_new,
        min_count=args.min_count,
        min_docs=args.min_docs,
        kinds=tuple(k.strip() for k in args.kinds.split(",") if k.strip()),
        allow_digits=args.allow_digits,
        max_phrase_words=args.max_phrase_words,
        min_cohesion=args.min_cohesion,
        min_groups=args.min_groups,
        max_token_chars=args.max_token_chars,
    )
    # (None: not given; with --counts the holdout is the one the shards were counted with)
    given = {flag: value for flag, value in (("--holdout", args.holdout), ("--seed", args.seed)) if value is not None}
    args.holdout = _DEFAULT_HOLDOUT if args.holdout is None else args.holdout
    args.seed = 0 if args.seed is None else args.seed
    holdout = check_holdout(args.holdout, what="kept out of selection for the held-out curve") or None
    shard = _parse_shard(args.shard)
    if not args.corpus and not args.counts:
        raise VocabxError("give a CORPUS, or --counts FILE from vocabx merge-counts")
    if shard is None:
        check_output_dir(args.output, args.overwrite, "report.json", "report")
    tokenizer = load_tokenizer(args.model, trust_remote_code=args.trust_remote_code)
    space = TokenSpace.of(tokenizer)
    count_kwargs = dict(max_phrase_words=settings.max_phrase_words, phrases="phrase" in settings.kinds)
    reference = _read(args, args.reference, "--reference") if args.reference else None
    common = dict(
        reference=reference,
        holdout=holdout,
        seed=args.seed,
        settings=settings,
        model_info=_model_info(args.model, tokenizer),
        reference_sources=list(args.reference) if args.reference else None,
    )
    if args.counts:
        counts, meta = Counts.load(args.counts)
        if _held_out_counts(args.counts, meta):
            raise VocabxError(f"--counts {args.counts} holds held-out documents, not a corpus's counts; pass the file vocabx merge-counts wrote (or a counts-I-of-N file)")
        if meta.get("model") not in (None, args.model):
            raise VocabxError(f"counts file {args.counts} was made with --model {meta.get('model')}, not {args.model}; count again")
        held = Counts.load(_holdout_file(args.counts, meta))[0] if meta.get("holdout_file") else None
        # The held-out split was made when counting: the report records that one, not this command's flags.
        common.update(holdout=meta.get("holdout") or None, seed=meta.get("seed", args.seed))
        example_texts = None
        if args.corpus:  # (read again for the examples, less the documents the shards held out)
            corpus = _read(args, args.corpus)
            is_held = holdout_test(common["holdout"], common["seed"]) if common["holdout"] else None
            example_texts = (t for t in corpus if is_held is None or not is_held(t))
        result = analyze(None, tokenizer, counts=counts, held_counts=held, sources=[args.counts], example_texts=example_texts, **common)
        result.report["counts_file"] = str(args.counts)
        notes = result.report.setdefault("notes", [])
        counted = {"--holdout": common["holdout"] or 0, "--seed": common["seed"]}
        unused = [f"{flag} {value}" for flag, value in given.items() if value != counted[flag]]
        if unused:
            notes.append(
                f"{' and '.join(unused)} {'is' if len(unused) == 1 else 'are'} left unused: the held-out documents were set apart "
                f"when the shards were counted (--holdout {common['holdout'] or 0}, --seed {common['seed']}), and --holdout and "
                "--seed do not change them here; count the shards again to change them"
            )
        if not common["holdout"] and held is None:
            notes.append("the shards were counted without a holdout (--holdout 0), so there is no held-out curve; count them with --holdout FRACTION for one")
    else:
        texts = _read(args, args.corpus, group_field=args.group_field)
        if shard is not None:
            for flag, given in (("--min-groups", settings.min_groups > 1), ("--holdout-groups", args.holdout_groups)):
                if given:
                    raise VocabxError(f"{flag} works on a whole corpus, not on shards (merged counts keep no groups); leave it out with --shard")
            return _count_shard(args, texts, space, shard, holdout, count_kwargs)
        with progress_bar(texts.approx_bytes, quiet=args.quiet, desc="counting") as bar:
            result = analyze(
                texts, tokenizer, sources=list(args.corpus), progress=bar.update, groups=texts.groups, holdout_groups=args.holdout_groups, **common
            )
    if args.group_field and holdout and not args.holdout_groups and not args.counts:
        result.report["notes"].append(_SAME_SOURCES_NOTE)
    files = write_report(result.report, args.output, overwrite=args.overwrite)
    r = result.report
    summary = {
        "report": str(Path(args.output) / "report.json"),
        "candidates": len(r["candidates"]),
        "kinds": {k: sum(1 for c in r["candidates"] if c["kind"] == k) for k in ("word", "subword", "phrase")},
        "corpus_tokens": r["corpus"]["tokens"],
        "recommended_n": r["recommended_n"],
        "recommended": r["recommended"],
        "savings_at_max": r["savings_curve"][-1] if r["savings_curve"] else None,
        "holdout_savings_at_max": r["holdout_curve"][-1] if r["holdout_curve"] else None,
        "reference_savings_at_max": r["reference_curve"][-1] if r.get("reference_curve") else None,
        "notes": r["notes"],
    }
    rows = [
        ("corpus", f"{r['corpus']['docs']:,} docs, {r['corpus']['tokens']:,} tokens, {r['corpus']['tokens_per_word']:.3f} tokens/word"),
        ("candidates", ", ".join(f"{v:,} {k}s" for k, v in summary["kinds"].items())),
    ]
    held = r.get("holdout") or {}
    held_docs = f"{held.get('docs', 0):,} docs"  # (a seeded hash picks them: near, not exactly, the --holdout share)
    from vocabx.report import name_groups

    held_label = f"saved (held-out groups: {name_groups(held['groups'])}; {held_docs})" if held.get("groups") else f"saved (held-out, {held_docs})"
    for label, curve in (("saved (analyzed)", r["savings_curve"]), (held_label, r["holdout_curve"]), ("saved (reference)", r.get("reference_curve"))):
        if curve:
            rows.append((label, f"{curve[-1]['fraction']:.1%} of tokens with {curve[-1]['n']:,} new tokens"))
    rec = r["recommended"]
    if rec.get("n"):
        cost = f", +{rec['extra_parameters']:,} parameters ({rec['extra_mb']} MB)" if rec.get("extra_parameters") else ""
        held_out = rec.get("holdout_fraction") is not None
        share = rec["holdout_fraction"] if held_out else rec.get("fraction")
        on_reference = f", rewrites {rec['reference_fraction']:.1%} of the reference" if rec.get("reference_fraction") is not None else ""
        rows.append(("recommended N", f"{rec['n']:,} (saves {share:.1%} {'held out' if held_out else 'analyzed'}{on_reference}{cost})"))
    rows.append(("report", f"{files['report.html']}"))
    for note in r["notes"]:
        rows.append(("note", note))
    emit(args, summary, table(rows))
    return 0


_SAME_SOURCES_NOTE = (
    "the held-out documents come from the same groups as the analyzed ones, which overstates what the tokens "
    "save on other sources (MedQuAD: 34.7% on unseen documents of its sites, 21.3% on other sites); "
    "--holdout-groups holds out whole groups instead"
)


_DEFAULT_HOLDOUT = 0.1


def _analyze_args(parser: argparse.ArgumentParser) -> None:
    _add_corpus(parser, nargs="*")
    _add_model(parser)
    parser.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="folder for the report")
    parser.add_argument("--reference", nargs="+", metavar="CORPUS", help="general text: lowers candidates common everywhere")
    parser.add_argument(
        "--holdout", type=float, metavar="FRACTION",
        help=f"documents kept out of selection for the honest curve, in (0, 0.5]; 0 for none (default {_DEFAULT_HOLDOUT}; with --counts, the one the shards were counted with)",
    )
    parser.add_argument("--max-new", type=int, default=16384, metavar="N", help="candidates to rank (default 16384)")
    parser.add_argument("--min-count", type=int, default=5, help="minimum occurrences of a candidate (default 5)")
    parser.add_argument("--min-docs", type=int, default=3, help="minimum documents a candidate appears in (default 3)")
    parser.add_argument("--kinds", default="word,subword,phrase", help="candidate kinds to consider (default word,subword,phrase)")
    parser.add_argument("--allow-digits", action="store_true", help="allow candidates with digits")
    parser.add_argument("--max-phrase-words", type=int, default=4, help="longest phrase in words (default 4)")
    parser.add_argument("--min-cohesion", type=float, default=0.0, metavar="SHARE", help="leave out phrases whose last word follows the others in less than SHARE of their occurrences, such as ' of the' (0.3 drops it; default 0: keep all)")
    parser.add_argument("--max-token-chars", type=int, default=64, metavar="N", help="leave out candidates longer than N characters, such as a base64 blob repeated across documents (default 64)")
    _add_group_args(parser)
    parser.add_argument(
        "--holdout-groups",
        action="store_true",
        help="hold out whole groups (--holdout is then a share of the groups): the held-out curve measures sources the selection never saw",
    )
    parser.add_argument("--seed", type=int, help="seed of the holdout split (default 0; with --counts, the one the shards were counted with)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    parser.add_argument("--shard", metavar="I/N", help="count only documents I, I+N, ... (I from 0 to N-1: --shard 0/2 and 1/2 cover a corpus) and write a counts file into -o")
    parser.add_argument(
        "--counts", metavar="FILE",
        help="analyze merged shard counts (from vocabx merge-counts) instead of a corpus; a CORPUS given too is read only for the candidates' examples",
    )


def _add_group_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--min-groups",
        type=int,
        default=1,
        metavar="K",
        help="leave out words and phrases found in fewer than K groups of documents, such as one site's templates (default 1: off)",
    )
    _add_group_field(parser)


def _add_group_field(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--group-field",
        metavar="FIELD",
        help="the record field (JSON, CSV, parquet) naming each document's group, such as its source site (default: each file is a group)",
    )


def cmd_merge_counts(args: argparse.Namespace) -> int:
    """Merge counts files written by `vocabx analyze --shard I/N` into one, for `vocabx analyze --counts`."""
    from vocabx.analyze import Counts

    merged, held, metas, skipped = Counts(), Counts(), [], []
    out = Path(args.output)
    if out.is_dir():
        raise VocabxError(f"-o {args.output} is a folder; merge-counts writes one file, such as {out / 'merged.counts.json.gz'}")
    for path in args.files:
        # (the output itself, on a rerun of `merge-counts DIR/*.counts.json.gz -o DIR/merged...`; held-out
        # counts, merged through the shard's own file, which names them: known by name before loading)
        if Path(path).resolve() == out.resolve() or _HELD_OUT_NAME.fullmatch(Path(path).name):
            skipped.append(str(path))
            continue
        counts, meta = Counts.load(path)
        if _held_out_counts(path, meta):
            skipped.append(str(path))
            continue
        again = {Path(p).name for p in meta.get("merged") or ()} & {Path(p).name for p in args.files}
        if again:
            raise VocabxError(
                f"{path} is a merge of {', '.join(sorted(again))}, which are given too: they would count twice; "
                f"leave out either {path} or the files it merged"
            )
        merged.merge(counts)
        metas.append(meta)
        if meta.get("holdout_file"):
            held.merge(Counts.load(_holdout_file(path, meta))[0])
    if not metas:
        raise VocabxError(
            f"{', '.join(map(str, args.files))}: only held-out counts; pass the counts-I-of-N files that "
            "vocabx analyze --shard wrote (their held-out counts are merged with them)"
        )
    models = {m.get("model") for m in metas}
    if len(models) > 1:
        raise VocabxError(f"counts files were made with different models ({', '.join(sorted(map(str, models)))}); count all shards with one --model")
    for key, flag in (("holdout", "--holdout"), ("seed", "--seed"), ("max_phrase_words", "--max-phrase-words"), ("phrases", "--kinds")):
        values = {json.dumps(m.get(key)) for m in metas if key in m}
        if len(values) > 1:
            raise VocabxError(f"counts files were made with different {flag} ({', '.join(sorted(values))}); count all shards with the same {flag}")
    shards = [m["shard"] for m in metas if m.get("shard")]
    if len({s.split("/")[1] for s in shards}) > 1:
        raise VocabxError(f"counts files are shards of different splits ({', '.join(sorted(set(shards)))}); merge the shards of one --shard I/N split")
    twice = sorted({s for s in shards if shards.count(s) > 1})
    if twice:
        raise VocabxError(f"shard {', '.join(twice)} is given more than once (from different folders?): its documents would count twice")
    meta = {"model": models.pop(), "merged": [str(p) for p in args.files if str(p) not in skipped], "holdout": metas[0].get("holdout"), "seed": metas[0].get("seed")}
    out.parent.mkdir(parents=True, exist_ok=True)
    if held.docs:
        held_path = out.with_name(out.name.replace(".counts.json.gz", "") + ".holdout.counts.json.gz")
        held.save(held_path, meta={**meta, "role": "holdout"})
        meta["holdout_file"] = held_path.name
    for key in ("max_phrase_words", "phrases"):
        if key in metas[0]:
            meta[key] = metas[0][key]
    merged.save(out, meta=meta)
    line = f"wrote {out}: {merged.docs:,} documents from {len(metas)} files"
    if held.docs:
        line += f", and their {held.docs:,} held-out documents to {out.with_name(meta['holdout_file'])}"
    if skipped:
        line += f" (skipped {len(skipped)}: held-out counts, which come in through their shards, or the output itself)"
    emit(args, {"counts": str(out), "docs": merged.docs, "holdout_docs": held.docs, "files": len(metas), "skipped": skipped}, line)
    return 0


def _holdout_file(counts_path: str, meta: dict) -> Path:
    """The held-out counts a counts file names: a name beside it (a path, in files written before
    2026-12-05, relative to where the shard was counted)."""
    named = Path(meta["holdout_file"])
    beside = Path(counts_path).parent / named.name
    return beside if beside.is_file() or not named.is_file() else named


def _held_out_counts(path: str, meta: dict) -> bool:
    """Whether a counts file holds a shard's held-out documents (written beside its counts by --shard):
    merged as training counts, they would be scored as held-out text and counted as analyzed text."""
    return meta.get("role") == "holdout" or _HELD_OUT_NAME.fullmatch(Path(path).name) is not None


_HELD_OUT_NAME = re.compile(r"(holdout-\d+-of-\d+|.*\.holdout)\.counts\.json\.gz")  # (the names --shard and merge-counts give them)


def _merge_counts_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="COUNTS", help="counts files from vocabx analyze --shard")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="merged counts file (.counts.json.gz)")


_EXTEND_FIT_STEPS = 60
_EXTEND_FIT_REPLAY = 0.25


def cmd_extend(args: argparse.Namespace) -> int:
    """Add tokens to a model's tokenizer as real vocabulary entries, resize the model and initialize the rows.

    The tokens come from an analyzer report (--report, the first --top N) or a terms file (--terms, one
    term per line as it appears in text). Writes a standard Hugging Face model folder plus vocabx.json.
    """
    from vocabx.extend import extend, read_terms, save_extension, tokens_from_report, tokens_from_terms
    from vocabx.initialize import resolve_init
    from vocabx.models import load_tokenizer
    from vocabx.outputs import check_output_dir
    from vocabx.report import read_report

    if bool(args.report) == bool(args.terms):
        raise VocabxError("give exactly one of --report REPORT_DIR or --terms FILE")
    if args.fit and args.tokenizer_only:
        raise VocabxError("--fit fits the new rows of a model, but --tokenizer-only writes no model; drop one of them")
    resolve_init(args.init)
    # (a fit option without --fit would be ignored without a word: refused, naming it)
    fit_options = [name for name, value in (("--fit-steps", args.fit_steps), ("--fit-replay", args.fit_replay)) if value is not None]
    if fit_options and not args.fit:
        raise VocabxError(f"{' and '.join(fit_options)} set the row fit, which runs only with --fit CORPUS; give --fit, or drop {'them' if len(fit_options) > 1 else 'it'}")
    if args.fit_replay is not None and not args.fit_general:
        raise VocabxError("--fit-replay is the share of each --fit batch drawn from --fit-general; give --fit-general too, or drop it")
    args.fit_steps = _EXTEND_FIT_STEPS if args.fit_steps is None else args.fit_steps
    args.fit_replay = _EXTEND_FIT_REPLAY if args.fit_replay is None else args.fit_replay
    if args.fit:
        from vocabx.fit import FitSettings

        FitSettings(steps=args.fit_steps, replay=args.fit_replay)  # bad values fail before the model loads
    if args.fit_general and not args.fit:
        raise VocabxError("--fit-general is general text to replay while fitting the rows; give the domain texts with --fit too")
    check_output_dir(args.output, args.overwrite, "vocabx.json", "extended model")
    terms: list[str] = []
    dropped: list[dict] = []
    if args.terms:
        terms, dropped = read_terms(args.terms)
        if not terms and not dropped:  # (before the model loads: an empty file would give a copy of the base)
            raise VocabxError(
                f"terms file {args.terms} holds no terms; write one term per line, as it appears in text "
                "(blank lines and lines starting with '#' are skipped)"
            )
    tokenizer = load_tokenizer(args.model, trust_remote_code=args.trust_remote_code)
    notes = []
    if args.report:
        report = read_report(args.report)
        made_for = (report.get("model") or {}).get("spec")
        vocab = (report.get("model") or {}).get("vocab_size")
        if (made_for and made_for != args.model) and vocab != len(tokenizer):
            raise VocabxError(f"report {args.report} was made for model {made_for!r}, not {args.model!r}; rerun vocabx analyze with --model {args.model}")
        n_candidates = len(report.get("candidates", []))
        top = args.top if args.top is not None else report.get("recommended_n") or n_candidates
        if top > n_candidates:
            notes.append(f"--top {top} is more than the report's {n_candidates} candidates; adding all of them")
        new = tokens_from_report(report, top)
    else:
        new, more = tokens_from_terms(terms, tokenizer)
        dropped += more
        if not new:
            raise VocabxError(
                f"terms file {args.terms}: none of its {len(dropped)} terms can be added ({_dropped_reasons(dropped)}); "
                f"give terms that {args.model} does not already hold as one token"
            )
    check = _read(args, args.check_corpus, "--check-corpus") if args.check_corpus else None
    ext = extend(
        args.model,
        new,
        tokenizer=tokenizer,
        init=args.init,
        check_texts=check,
        pad_to_multiple_of=args.pad_to_multiple_of,
        tokenizer_only=args.tokenizer_only,
        seed=args.seed,
        base_spec=args.model,
    )
    ext.dropped[:0] = dropped
    ext.manifest["dropped"] = ext.dropped
    ext.manifest["notes"] = notes
    fitted = None
    if args.fit and ext.added:
        from vocabx.fit import FitSettings, fit_extension

        texts = list(_read(args, args.fit, "--fit"))  # a list: batches from the whole corpus
        general = _read_list(args, args.fit_general, "--fit-general")
        settings = FitSettings(steps=args.fit_steps, seed=args.seed, replay=args.fit_replay)
        fitted = fit_extension(ext, texts, base_tokenizer=tokenizer, settings=settings, general=general, progress=not args.json)
    save_extension(ext, args.output, overwrite=args.overwrite)
    result = {"added": len(ext.added), "dropped": len(ext.dropped), "vocab_size": len(ext.tokenizer), "init": "none" if args.tokenizer_only else ext.manifest["init"].get("strategy", args.init), "output": args.output}
    reasons = _dropped_reasons(ext.dropped)
    rows = [("added", f"{len(ext.added):,} tokens"), ("dropped", f"{len(ext.dropped):,}" + (f" ({reasons})" if reasons else "")), ("vocab size", f"{len(ext.tokenizer):,}"), ("init", "none (--tokenizer-only: no rows)" if args.tokenizer_only else str(result["init"])), ("output", args.output)]
    if fitted:
        result["fit"] = fitted
        rows.append(("fitted rows", f"{fitted['steps']} steps in {fitted['seconds']} s, loss {fitted['loss_start']} -> {fitted['loss_end']}"))
    rows += [("note", n) for n in notes]
    emit(args, result, table(rows))
    return 0


def _dropped_reasons(dropped: list[dict]) -> str:
    """How many tokens were dropped for each reason, without the reasons' details.

    [{'reason': 'duplicate (terms line 5)'}, {'reason': 'duplicate (terms line 9)'}] -> '2 duplicate'
    """
    reasons: dict[str, int] = {}
    for d in dropped:
        key = d["reason"].split(" (")[0].split(" in '")[0].split(" in \"")[0]
        reasons[key] = reasons.get(key, 0) + 1
    return "; ".join(f"{v} {k}" for k, v in reasons.items())


def _extend_args(parser: argparse.ArgumentParser) -> None:
    _add_model(parser)
    parser.add_argument("--report", metavar="REPORT_DIR", help="analyzer report folder")
    parser.add_argument("--top", type=int, metavar="N", help="add the report's first N candidates (default: its recommended N)")
    parser.add_argument("--terms", metavar="FILE", help="terms file: one term per line, as it appears in text")
    parser.add_argument("-o", "--output", required=True, metavar="EXT_DIR", help="folder for the extended model")
    parser.add_argument("--init", default="mean_shift", help="embedding initialization: mean_shift, mean, mean_norm, interpolate, hewitt, random (default mean_shift)")
    parser.add_argument("--pad-to-multiple-of", type=int, metavar="K", help="round the embedding matrix up to a multiple of K rows")
    parser.add_argument("--tokenizer-only", action="store_true", help="write only the tokenizer (no model weights)")
    parser.add_argument("--check-corpus", nargs="+", metavar="CORPUS", help="texts on which every added token must be produced (default: its own surface)")
    parser.add_argument("--text-field", default="text", help="JSON field or column of --check-corpus, --fit and --fit-general (default text)")
    parser.add_argument("--line-docs", action="store_true", help="in .txt/.md --check-corpus, --fit and --fit-general corpora, one document per line")
    parser.add_argument("--fit", nargs="+", metavar="CORPUS", help="domain texts to fit the new rows on after initializing them (a map from pieces to rows shared by all new tokens, model frozen; see vocabx.fit)")
    parser.add_argument("--fit-steps", type=int, default=None, metavar="N", help=f"steps of 4 x 256 tokens for --fit (default {_EXTEND_FIT_STEPS})")
    parser.add_argument(
        "--fit-general",
        nargs="+",
        metavar="CORPUS",
        help="general text replayed in each --fit batch, so the rows also keep general text as the base model scores it (not the text you will evaluate on)",
    )
    parser.add_argument("--fit-replay", type=float, default=None, metavar="SHARE", help=f"share of each --fit batch drawn from --fit-general (default {_EXTEND_FIT_REPLAY})")
    parser.add_argument("--seed", type=int, default=0, help="seed for random initializations and for --fit's batches (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing extended model folder")


def cmd_check(args: argparse.Namespace) -> int:
    """Verify an extended tokenizer's guarantees against its base on a corpus; exit 1 if one is broken."""
    from vocabx.check import check_corpus
    from vocabx.extend import load_extended_tokenizer, read_manifest
    from vocabx.models import load_tokenizer

    texts = _read(args, args.corpus)
    manifest = read_manifest(args.extended)
    base = load_tokenizer(args.model, trust_remote_code=args.trust_remote_code)
    ext = load_extended_tokenizer(args.extended)
    base_vocab = (manifest.get("base_model") or {}).get("vocab_size")
    if base_vocab is not None and base_vocab != len(base):
        raise VocabxError(f"{args.extended} extends a tokenizer of {base_vocab} tokens, but --base {args.model} has {len(base)}; pass the base it was made from")
    with progress_bar(texts.approx_bytes, quiet=args.quiet, desc="check") as bar:
        result = check_corpus(base, ext, texts, manifest, progress=bar.update)
    rows = [
        ("docs", f"{result['docs']:,}"),
        ("base tokens", f"{result['base_tokens']:,}"),
        ("extended tokens", f"{result['extended_tokens']:,}"),
        ("token reduction", f"{result['token_reduction']:.1%}"),
        ("docs longer", f"{result['docs_longer']:,}"),
        ("round-trip failures", f"{result['roundtrip_failures']:,}"),
        ("in-word matches", f"{result['in_word_matches']:,}"),
        ("new-token adoption", f"{result['new_token_adoption']:.1%} of tokens; {result['added_used']:,} of {result['added']:,} added tokens used"),
        ("unreachable tokens", f"{result['unreachable']:,}"),
    ]
    if result.get("ignore_merges_changes"):
        rows.append(("note", f"switching the base BPE to ignore_merges alone changes the tokenization of {result['ignore_merges_changes']} documents"))
    for key, example in result["examples"].items():
        # (one line per row: a document's excerpt may hold newlines; --json keeps it whole)
        shown = " ".join(str(example).split())
        rows.append((f"e.g. {key.replace('_', ' ')}", shown if len(shown) <= 160 else shown[:157] + "..."))
    rows.append(("guarantees", "kept" if result["ok"] else "BROKEN"))
    emit(args, {k: v for k, v in result.items()}, table(rows))
    return 0 if result["ok"] else EXIT_BROKEN


def _check_args(parser: argparse.ArgumentParser) -> None:
    _add_corpus(parser)
    _add_model(parser, "--base")
    parser.add_argument("--extended", required=True, metavar="EXT_DIR", help="folder written by vocabx extend")


def _release_process_group() -> None:
    """Destroy the process group ``accelerate launch`` made, if any, once the command is over.

    The command owns its process, so it tears the group down (the library functions do not: a
    script that calls ``vocabx.train`` may use the group afterwards).
    """
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _launched_processes() -> int:
    """How many processes ``accelerate launch`` / torchrun started for this command (1 when run alone)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def _exit_now(code: int) -> None:
    """End a launched process at once, after flushing, skipping the C++ static destructors.

    Under ``accelerate launch`` on CPU (gloo), a finished process sometimes aborted while the
    interpreter shut down ("terminate called without an active exception", no Python frame left),
    turning a successful run into exit code -6 even with the process group destroyed first. The
    command has returned, so every file is written and synced across processes before this point.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # (the reader left; _run has already said nothing)
            pass
    logging.shutdown()
    os._exit(code)


def cmd_train(args: argparse.Namespace) -> int:
    """Train LoRA and the new tokens' embedding rows of an extended model on a corpus; write a small adapter.

    --model is a folder written by vocabx extend (or any model with --mode lora, or --new-token-ids).
    -o receives the adapter (LoRA weights and new rows only), the tokenizer, the training config,
    metrics, log.jsonl and checkpoints; --resume continues from its newest checkpoint. Settings come
    from the defaults, then --config FILE (YAML), then the flags. Runs on several processes under
    `accelerate launch -m vocabx train ...`.
    """
    from vocabx.train import config_from_args, on_every_process, train

    with on_every_process():
        config = config_from_args(args)
        texts = _read(args, args.corpus)
        eval_texts = _read(args, args.eval_corpus, "--eval-corpus") if args.eval_corpus else None
        replay_texts = _read(args, args.replay, "--replay") if args.replay else None
    result = train(
        args.model,
        texts,
        args.output,
        config,
        eval_texts=eval_texts,
        replay_texts=replay_texts,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=False if args.quiet else None,
        trust_remote_code=args.trust_remote_code,
    )
    if not result.is_main_process:
        return 0

    def num(value: float | None, digits: int = 4) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    rows = [
        ("mode", f"{result.mode} ({result.trainable_parameters:,} trained parameters)"),
        ("steps", f"{result.steps:,} ({result.tokens:,} tokens)"),
        ("train loss", num(result.train_loss)),
        ("eval loss", num(result.eval_loss)),
        ("eval bits per byte", num(result.eval_bpb)),
        ("tokens/s", f"{result.tokens_per_second:,.0f}"),
        ("adapter", f"{result.output_dir} ({result.adapter_bytes / 1e6:.2f} MB of weights)"),
    ]
    if result.merged_dir:
        rows.append(("merged model", result.merged_dir))
    emit(args, result.as_dict(), table(rows))
    return 0


def _train_args(parser: argparse.ArgumentParser) -> None:
    from vocabx.train import add_config_flags

    _add_corpus(parser)
    _add_model(parser, help="the folder vocabx extend wrote (its vocabx.json names the new rows), or with --mode lora or full any model: smollm2-135m, a local folder or a hub id")
    parser.add_argument("-o", "--output", required=True, metavar="ADAPTER_DIR", help="folder for the adapter, log and checkpoints")
    parser.add_argument("--resume", action="store_true", help="continue the run in -o from its newest checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier training run in -o")
    parser.add_argument("--config", metavar="FILE", help="YAML file of settings (keys as the flags below); flags override it")
    parser.add_argument("--eval-corpus", nargs="+", metavar="CORPUS", help="evaluate on these texts instead of a held-out share of CORPUS")
    parser.add_argument("--replay", nargs="+", metavar="CORPUS", help="general text replayed as --replay-fraction of the training blocks, to keep the model's general behaviour (none of the text it will be judged on)")
    add_config_flags(parser)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Compare the base and the adapted model: tokens, tokens per word, bits per byte, adoption, speed.

    --adapted is a folder written by vocabx extend (an extended model) or vocabx train (an adapter or a
    merged model). Each corpus is scored on its first --max-docs documents, cut to --max-chars characters:
    on a CPU, scoring is bounded by the model's forward passes.
    """
    from vocabx.evaluate import Side, evaluate, load_side, take, write_metrics
    from vocabx.models import load_model, load_tokenizer
    from vocabx.outputs import check_output_dir

    def named(sources: list[str], role: str | None = None) -> dict[str, list[str]]:
        return {src: take(_read(args, src, role), args.max_docs, args.max_chars) for src in sources}

    corpora = named(args.corpus)
    general = named(args.general or [], "--general")
    out = Path(args.output) if args.output else Path(args.adapted) / "evaluation"
    check_output_dir(out, args.overwrite, "metrics.json", "evaluation")
    adapted = load_side(args.model, args.adapted)
    base = Side(load_model(args.model), load_tokenizer(args.model), set(), label=args.model)
    with progress_bar(len(corpora) + len(general), quiet=args.quiet, desc="evaluate", unit="corpus") as bar:
        metrics = evaluate(base, adapted, corpora, general, block_size=args.block_size, batch_size=args.batch_size, prompts=args.prompts, progress=bar.update)
    write_metrics(metrics, out, overwrite=args.overwrite)
    rows = []
    for name, r in metrics["corpora"].items():
        b, a = r["base"], r["adapted"]
        speed = f", {r['speedup']:.2f}x docs/s" if r.get("speedup") else ""
        rows.append((f"{name} ({r['role']})", f"tokens {b['tokens']:,} -> {a['tokens']:,} ({-r['token_reduction']:+.1%}), tokens/word {b['tokens_per_word']:.3f} -> {a['tokens_per_word']:.3f}, bpb {b['bpb']:.4f} -> {a['bpb']:.4f} ({r['bpb_change']:+.2%}), adoption {r['new_token_adoption']:.1%}{speed}"))
    rows.append(("written", str(out)))
    emit(args, metrics, table(rows))
    return 0


def _evaluate_args(parser: argparse.ArgumentParser) -> None:
    _add_corpus(parser)
    _add_model(parser, "--base")
    parser.add_argument("--adapted", required=True, metavar="DIR", help="extended model, adapter or merged model folder")
    parser.add_argument("--general", nargs="+", metavar="CORPUS", help="general text, to show regressions")
    parser.add_argument("-o", "--output", metavar="DIR", help="where to write metrics.json, report.md, metrics.png (default: DIR/evaluation)")
    parser.add_argument("--max-docs", type=at_least(1), default=64, help="documents scored per corpus (default 64)")
    parser.add_argument("--max-chars", type=at_least(1), default=4000, help="characters kept per document (default 4000)")
    parser.add_argument("--block-size", type=at_least(1), default=1024, help="tokens per scoring window (default 1024)")
    parser.add_argument("--batch-size", type=at_least(1), default=8, help="windows per forward pass (default 8)")
    parser.add_argument("--prompts", type=at_least(0), default=4, help="greedy generations per domain corpus for adoption (default 4; 0 for none)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing evaluation folder")


def cmd_adapt(args: argparse.Namespace) -> int:
    """The main job: analyze, extend, train and evaluate into one run folder, and print before/after.

    Stages whose inputs did not change since the last run in -o are skipped; --budget quick takes a few
    minutes on a laptop CPU, standard is what the published figures use.
    """
    from vocabx.adapt import adapt, budget_of, comparison_table, verdict

    budget_of(args.budget)
    stream = _read(args, args.corpus, group_field=args.group_field)
    texts = list(stream)
    general = _read_list(args, args.general, "--general")
    eval_texts = _read_list(args, args.eval, "--eval")
    replay = _read_list(args, args.replay, "--replay")
    reference = _read_list(args, args.reference, "--reference")
    log = (lambda line: None) if args.quiet or args.json else (lambda line: print(f"vocabx: {line}", file=sys.stderr))
    if args.group_field and eval_texts is None and not args.holdout_groups:
        log(
            "note: the held-out documents it is evaluated on come from the same groups as the training ones, which "
            "flatters the adapted model on other sources; --holdout-groups evaluates on whole groups it never trained on"
        )
    metrics = adapt(
        texts,
        args.output,
        model=args.model,
        budget=args.budget,
        general=general,
        eval_texts=eval_texts,
        holdout=args.holdout,
        seed=args.seed,
        overwrite=args.overwrite,
        log=log,
        sources=list(args.corpus),
        new_tokens=args.new_tokens,
        min_cohesion=args.min_cohesion,
        max_token_chars=args.max_token_chars,
        rows_update=args.rows_update,
        progress=False if args.quiet or args.json else None,
        min_groups=args.min_groups,
        groups=stream.groups,
        replay=replay,
        replay_fraction=args.replay_fraction,
        lr=args.lr,
        lora_r=args.lora_r,
        reference=reference,
        holdout_groups=args.holdout_groups,
    )
    # (what `vocabx compare` needs to score the strategies where this run was judged)
    corpus = " ".join(args.corpus) + (
        (f" --group-field {args.group_field}" if args.group_field else "") + f" --holdout {args.holdout} --holdout-groups" if args.holdout_groups else ""
    )
    cohesion = args.min_cohesion if args.min_cohesion is not None else budget_of(args.budget).min_cohesion
    said = verdict(metrics, args.output, corpus, " ".join(args.general) if args.general else "GENERAL", min_cohesion=cohesion)
    emit(args, metrics | {"verdict": said}, comparison_table(metrics) + "\n\n" + "\n".join(f"verdict: {line}" for line in said) + f"\nrun folder: {args.output}")
    return 0


def _adapt_args(parser: argparse.ArgumentParser) -> None:
    from vocabx.adapt import ADAPT_LR, ADAPT_ROWS_UPDATE, BUDGETS
    from vocabx.train import ROWS_UPDATES

    _add_corpus(parser)
    _add_model(parser)
    parser.add_argument("-o", "--output", required=True, metavar="RUN_DIR", help="run folder (reused: finished stages are skipped)")
    # (the names in the usage line; a wrong one is refused by adapt, naming the three)
    parser.add_argument("--budget", default="quick", metavar="{" + ",".join(BUDGETS) + "}", help="quick, standard or full (default quick)")
    parser.add_argument("--general", nargs="+", metavar="CORPUS", help="general text to check for regressions")
    parser.add_argument("--eval", nargs="+", metavar="CORPUS", help="domain test text to evaluate on (default: hold out --holdout of CORPUS); with it every CORPUS document trains, but those it holds too")
    parser.add_argument("--holdout", type=float, default=0.1, help="share of documents, in (0, 0.5], held out for evaluation when there is no --eval; with it, the analysis still holds out this share for its own held-out curve (default 0.1)")
    parser.add_argument(
        "--holdout-groups",
        action="store_true",
        help="hold out whole groups for evaluation (--holdout is then a share of the groups): the model is judged on sources it never trained on",
    )
    parser.add_argument("--new-tokens", type=int, metavar="N", help="tokens to add instead of the budget's (quick 1024, standard 8192, full 16384)")
    parser.add_argument("--min-cohesion", type=float, default=None, metavar="SHARE", help="the analyzer's --min-cohesion: leave out phrases whose last word follows the others in less than SHARE of cases (default: the budget's, quick 0.3, standard and full 0: every phrase)")
    parser.add_argument("--max-token-chars", type=int, default=None, metavar="N", help="the analyzer's --max-token-chars: leave out candidates longer than N characters (default 64)")
    parser.add_argument(
        "--reference",
        nargs="+",
        metavar="CORPUS",
        help="general text the analyzer ranks candidates against (tokens common there rank lower: less general text rewritten, and less length); documents that --general evaluates are left out of it",
    )
    _add_group_args(parser)
    parser.add_argument("--rows-update", default=ADAPT_ROWS_UPDATE, choices=ROWS_UPDATES, help=f"the trainer's --rows-update: which new rows a step moves (default {ADAPT_ROWS_UPDATE}; active: those of tokens in the step's batch and of tokens predicted where they are not due; sparse: only the batch's, the trainer's own default)")
    parser.add_argument("--replay", nargs="+", metavar="CORPUS", help="general text replayed in training (the trainer's --replay); documents that --general evaluates are left out of it")
    parser.add_argument("--replay-fraction", type=float, default=0.25, metavar="SHARE", help="share of the training blocks drawn from --replay (default 0.25)")
    parser.add_argument("--lr", type=float, metavar="X", help=f"LoRA's peak learning rate in training (default: the budget's, {ADAPT_LR:g} for quick and standard, the trainer's 2e-4 for full)")
    parser.add_argument("--lora-r", type=int, metavar="R", help="LoRA's rank in training, alpha twice it (default: the trainer's rank 4, alpha 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split, of the fit and of training (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace the run of another CORPUS or --model in RUN_DIR (the same run is resumed without it; a folder that is not a vocabx run is never replaced)")


def cmd_compare(args: argparse.Namespace) -> int:
    """Train the strategies tokens, lora+tokens, lora and full at several data budgets and seeds.

    Reports held-out bits per byte as a table and a learning-curve plot, the budget where the more
    flexible strategy overtakes the more conservative one, and a recommendation for the corpus's size.
    On a 2-core CPU with smollm2-135m (about 200 training tokens/s), the default budgets and two seeds
    take about ten hours, most of it the 1M budget; --budgets 5000,20000,80000 --eval-docs 32 took 80
    minutes on MedQuAD.
    """
    from vocabx.compare import compare

    def ints(text: str, flag: str) -> tuple[int, ...]:
        try:
            return tuple(int(x.replace("_", "")) for x in text.split(",") if x)
        except ValueError:
            raise VocabxError(f"{flag} must be comma-separated integers, got {text!r}") from None

    stream = _read(args, args.corpus, group_field=args.group_field)
    texts = list(stream)
    eval_texts = _read_list(args, args.eval, "--eval")
    log = (lambda line: None) if args.quiet or args.json else (lambda line: print(f"vocabx: {line}", file=sys.stderr))
    result = compare(
        texts,
        args.output,
        model=args.model,
        budgets=ints(args.budgets, "--budgets"),
        strategies=tuple(s for s in args.strategies.split(",") if s),
        seeds=ints(args.seeds, "--seeds"),
        new_tokens=args.new_tokens,
        batch_size=args.batch_size,
        block_size=args.block_size,
        eval_docs=args.eval_docs,
        fit_steps=args.fit_steps,
        min_cohesion=args.min_cohesion,
        eval_texts=eval_texts,
        log=log,
        holdout=args.holdout,
        groups=list(stream.groups),
        holdout_groups=args.holdout_groups,
    )
    from vocabx.compare import compare_markdown

    emit(args, result, compare_markdown(result))
    return 0


def _compare_args(parser: argparse.ArgumentParser) -> None:
    _add_corpus(parser)
    _add_model(parser)
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for runs, compare.json, compare.md, learning_curve.png")
    parser.add_argument("--budgets", default="10000,100000,1000000", help="training-token budgets (default 10000,100000,1000000)")
    parser.add_argument("--strategies", default="tokens,lora+tokens,lora,full", help="strategies to compare, comma-separated (default tokens,lora+tokens,lora,full)")
    parser.add_argument("--seeds", default="0,1", help="seeds (default 0,1)")
    parser.add_argument("--new-tokens", type=int, default=8192, help="tokens added for the extended strategies (default 8192)")
    parser.add_argument("--min-cohesion", type=float, default=0.0, metavar="SHARE", help="the analyzer's --min-cohesion for those tokens (default 0: every phrase)")
    parser.add_argument("--batch-size", type=int, default=4, help="training blocks per step (default 4)")
    parser.add_argument("--block-size", type=int, default=512, help="tokens per training block (default 512)")
    parser.add_argument("--eval-docs", type=int, default=48, help="held-out documents scored (default 48)")
    parser.add_argument("--eval", nargs="+", metavar="CORPUS", help="score on this text (such as other sources) instead of holding out a tenth of CORPUS")
    parser.add_argument("--holdout", type=float, default=0.1, help="share of CORPUS, in (0, 0.5], held out to score on when there is no --eval (default 0.1)")
    parser.add_argument(
        "--holdout-groups",
        action="store_true",
        help="hold out whole groups instead of documents (--holdout is then a share of the groups): strategies are scored on sources none of them trained on",
    )
    _add_group_field(parser)
    parser.add_argument(
        "--fit-steps",
        type=int,
        default=100,
        help="fit the new rows on each budget's documents before training, one pass of at most this many steps (default 100, as adapt's standard budget; 0: no fit)",
    )


COMMANDS["analyze"] = (cmd_analyze, _analyze_args)
COMMANDS["merge-counts"] = (cmd_merge_counts, _merge_counts_args)
COMMANDS["extend"] = (cmd_extend, _extend_args)
COMMANDS["check"] = (cmd_check, _check_args)
COMMANDS["evaluate"] = (cmd_evaluate, _evaluate_args)
COMMANDS["adapt"] = (cmd_adapt, _adapt_args)
COMMANDS["compare"] = (cmd_compare, _compare_args)
COMMANDS["train"] = (cmd_train, _train_args)


# ---------------------------------------------------------------------------------------------------
# Output helpers


def table(rows: Sequence[tuple[str, str]]) -> str:
    """[("docs", "3"), ("tokens", "10")] -> 'docs    3\\ntokens  10'"""
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an int no smaller than ``low``, checked before anything is loaded (argparse
    names the flag: "argument --max-docs: must be an integer of at least 1, got 0")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer of at least {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer of at least {low}, got {value}")
        return value

    parse.__name__ = f"integer of at least {low}"
    return parse


def emit(args: argparse.Namespace, result: dict, text: str) -> None:
    """Print the human-readable text, or with ``--json`` one JSON object as the last line."""
    if args.json:
        from vocabx.outputs import json_safe

        print(json.dumps(json_safe(result), ensure_ascii=False, allow_nan=False))  # (NaN is not JSON: null)
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


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, as every other vocabx error (the usage is one --help away)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}  # (the top-level parser's: its subcommands)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"vocabx: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        parsed, extra = self.parse_known_args(argv, namespace)
        if extra:  # (named by the command they were given to, whose --help lists its flags)
            command = getattr(parsed, "command", None)
            before = argv[: argv.index(command)] if command in argv else argv
            if command in self.commands and not set(extra) & set(before):
                self.commands[command].error(f"unrecognized arguments: {' '.join(extra)}")
            hint = f"; a command's flags go after it (vocabx {command} {' '.join(extra)} ...)" if command in self.commands else ""
            self.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vocabx",
        description="Adapt a pretrained language model's vocabulary to a domain: analyze, extend, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"vocabx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (func, add_args) in COMMANDS.items():
        doc = (func.__doc__ or "").strip()
        child = parser.commands[name] = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc)
        add_args(child)
        _add_common(child)
        child.set_defaults(func=func)
    return parser


def _format_warning(message: Warning | str, category: type, *_: object, **__: object) -> str:
    return f"vocabx: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    code = _run(argv)
    if _launched_processes() > 1:  # one of several processes of `accelerate launch -m vocabx ...`
        _release_process_group()
        _exit_now(code)
    return code


def _json_error(args: argparse.Namespace, message: str, code: int) -> None:
    """With --json, a failed command's last stdout line is a JSON object too: {"error": ..., "exit_code": ...}
    (a script reading the last line gets the reason, not an empty stdout); the stderr line stays."""
    if getattr(args, "json", False):
        with contextlib.suppress(OSError, ValueError):
            print(json.dumps({"error": message, "exit_code": code}), flush=True)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        print("vocabx: error: name a command, such as vocabx adapt CORPUS -o RUN_DIR (listed above)", file=sys.stderr)
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
            code = args.func(args)
            sys.stdout.flush()  # (a closed pipe shows here, not at exit, where it is a stray traceback)
            return code
    except VocabxError as exc:
        if args.debug:
            raise
        if not getattr(exc, "on_every_process", False) or os.environ.get("RANK", "0") == "0":  # (said once under accelerate launch)
            print(f"vocabx: error: {exc}", file=sys.stderr)
            _json_error(args, str(exc), EXIT_BAD_INPUT)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("vocabx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout left (`vocabx ... | head`): nothing to report
        try:  # (and nothing more to write at exit, when Python flushes stdout)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_PIPE_CLOSED
    except Exception as exc:  # an unexpected failure still gets one line; --debug shows where
        if args.debug:
            raise
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"vocabx: error: {type(exc).__name__}: {detail} (rerun with --debug for the traceback)", file=sys.stderr)
        _json_error(args, f"{type(exc).__name__}: {detail}", EXIT_FAILURE)
        return EXIT_FAILURE
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
