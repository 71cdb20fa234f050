"""Compare a base model and its adapted version on the same texts.

Per corpus, for base and adapted: tokens, tokens per word (the same words for both: the base
tokenizer's pre-tokenizer words), bytes per token, bits per byte (summed negative log-likelihood in bits
over UTF-8 bytes, the one measure comparable across vocabularies), and scoring throughput in documents
per second. For the adapted model also: new-token adoption in its tokenization of the text and in greedy
generations from the corpus's own opening words (does the model use its new tokens?), and the speedup
that shorter sequences buy. General-text corpora show regressions.

What it leaves out: training (``vocabx.train``) and significance testing across seeds (``compare``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from vocabx.errors import VocabxError, read_json

METRICS_SCHEMA = "vocabx.metrics/1"


@dataclass
class Side:
    """A model with its tokenizer, and the ids it added to the base (empty for the base itself)."""

    model: Any
    tokenizer: Any
    new_ids: set[int] = field(default_factory=set)
    label: str = ""


def load_side(base: str, adapted: str | Path) -> Side:
    """Load what `vocabx evaluate --adapted` names: an extended model folder, an adapter, or a merged model.

    Raises when the folder was made from another base than ``base`` (naming both).
    """
    from vocabx.extend import load_extended_tokenizer
    from vocabx.models import load_model, load_tokenizer

    folder = Path(adapted)
    if not folder.is_dir():
        raise VocabxError(f"--adapted {str(adapted)!r} is not a folder; pass a folder written by vocabx extend or vocabx train")
    if not (folder / "config.json").is_file() and not (folder / "adapter_config.json").is_file():
        if (folder / "run.json").is_file():
            raise VocabxError(
                f"--adapted {adapted} is the run folder of vocabx adapt, not a model; pass its adapter ({folder / 'adapter'}) "
                f"or its extended model ({folder / 'extended'})"
            )
        raise VocabxError(f"--adapted {adapted} holds no model (no config.json nor adapter_config.json); pass a folder written by vocabx extend or vocabx train")
    manifest = _manifest(folder)
    base_tok = load_tokenizer(base)
    made_from = (manifest or {}).get("base_model", {}) if manifest else {}
    if made_from.get("vocab_size") not in (None, len(base_tok)):
        raise VocabxError(
            f"{adapted} was made from {made_from.get('spec') or made_from.get('name_or_path')!r} "
            f"({made_from.get('vocab_size')} tokens), not from --base {base} ({len(base_tok)} tokens); pass its own base"
        )
    adapter = (folder / "adapter_config.json").is_file()
    if adapter:
        try:
            from vocabx.train import load_adapted
        except ImportError as exc:  # training is optional for evaluation of extended models
            raise VocabxError(f"{adapted} is an adapter, and loading adapters needs vocabx.train") from exc
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
    else:
        tokenizer = load_extended_tokenizer(folder) if (folder / "tokenizer.json").is_file() else base_tok
    _same_base_vocabulary(base, base_tok, tokenizer, folder)
    if adapter:
        # merged: LoRA's extra matmuls would make the adapted side look slower than it is
        model = load_adapted(base, folder, merge=True)
    else:
        model = load_model(folder)
        _same_architecture(base, model, adapted)
    new_ids = {a["id"] for a in (manifest or {}).get("added", [])} or set(range(len(base_tok), len(tokenizer)))
    return Side(model, tokenizer, new_ids, label=str(adapted))


def _same_base_vocabulary(base: str, base_tok: Any, tokenizer: Any, folder: Path) -> None:
    """Refuse a folder whose tokenizer (``tokenizer``, as loaded for scoring) does not hold the base's
    vocabulary at the base's ids (made from another base: a merged or fully trained folder has no manifest
    to say so)."""
    if tokenizer is base_tok:  # (no tokenizer.json: scored with the base's, but a slow one may be there)
        if not (folder / "tokenizer_config.json").is_file():
            return
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
    from vocabx.check import moved_tokens

    moved = moved_tokens(base_tok.get_vocab(), tokenizer.get_vocab())
    if moved:
        raise VocabxError(
            f"--adapted {folder} was not made from --base {base}: {len(moved):,} of the base's {len(base_tok):,} tokens "
            f"are missing or at other ids there (such as {moved[0]!r}); pass the base it was made from"
        )


def _same_architecture(base: str, model: Any, adapted: str | Path) -> None:
    """Refuse a model folder whose shape differs from the base's (another model with the same tokenizer,
    such as a larger one of the same family)."""
    from transformers import AutoConfig

    from vocabx.models import resolve_model

    ours = AutoConfig.from_pretrained(resolve_model(base))
    keys = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    differ = [k for k in keys if getattr(ours, k, None) != getattr(model.config, k, None)]
    if differ:
        shown = ", ".join(f"{k} {getattr(model.config, k, None)} against {getattr(ours, k, None)}" for k in differ)
        raise VocabxError(f"--adapted {adapted} is not a model made from --base {base}: {shown}; pass the base it was made from")


def _manifest(folder: Path) -> dict | None:
    for name in ("vocabx.json", "extension.json"):
        path = folder / name
        if path.is_file():
            return read_json(path, "write the folder again with vocabx extend")
    return None


def score(
    side: Side, texts: list[str], words: int, *, block_size: int = 1024, batch_size: int = 8, pieces: list[str] | None = None, encodings: list[Any] | None = None
) -> dict:
    """Token counts, bits per byte and throughput of one model on one corpus.

    ``pieces``: ``texts`` cut by :func:`vocabx.metrics.text_windows` (the same for both models, so both
    score the same bytes with the same context); None scores the texts whole, cut at ``block_size``
    tokens of this model. ``encodings``: the texts' encodings under this side's tokenizer (without
    special tokens), where the caller has them already."""
    from vocabx.metrics import bits_per_byte
    from vocabx.stats import backend_of

    if encodings is None:
        encodings = backend_of(side.tokenizer).encode_batch(texts, add_special_tokens=False)
    tokens = sum(len(e.ids) for e in encodings)
    new = sum(1 for e in encodings for i in e.ids if i in side.new_ids)
    size = sum(len(t.encode("utf-8")) for t in texts)
    # One untimed pass on a short text first: the first forward pays for allocations and thread start-up.
    warm = next((t for t in texts if t.strip()), "")
    bits_per_byte(side.model, side.tokenizer, [warm[:200] or " "], block_size=block_size, batch_size=1)
    started = time.perf_counter()
    result = bits_per_byte(side.model, side.tokenizer, texts if pieces is None else pieces, block_size=block_size, batch_size=batch_size)
    seconds = time.perf_counter() - started
    out = {
        "docs": len(texts),
        "bytes": size,
        "tokens": tokens,
        "tokens_per_word": round(tokens / words, 4) if words else 0.0,
        "bytes_per_token": round(size / tokens, 4) if tokens else 0.0,
        "bpb": round(result["bpb"], 5),
        "docs_per_second": round(len(texts) / seconds, 3) if seconds > 0 else None,
        "seconds": round(seconds, 2),
    }
    if side.new_ids:
        out["new_token_adoption"] = round(new / tokens, 5) if tokens else 0.0
    return out


def generation_adoption(side: Side, texts: list[str], *, prompts: int = 4, prompt_words: int = 12, max_new_tokens: int = 32) -> dict:
    """Share of new tokens in greedy continuations of the opening words of the corpus's first ``prompts``
    documents that have words (a blank document gives no prompt, and does not take one's place)."""
    import itertools

    import torch

    chosen = list(itertools.islice((" ".join(t.split()[:prompt_words]) for t in texts if t.split()), prompts))
    generated, new = 0, 0
    side.model.eval()
    for prompt in chosen:
        ids = side.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids.to(side.model.device)
        with torch.no_grad():
            out = side.model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=side.tokenizer.pad_token_id or side.tokenizer.eos_token_id)
        cont = out[0, ids.shape[1] :].tolist()
        generated += len(cont)
        new += sum(1 for i in cont if i in side.new_ids)
    return {"prompts": len(chosen), "generated_tokens": generated, "new_token_share": round(new / generated, 4) if generated else 0.0}


def evaluate(
    base: Side | str | Path,
    adapted: Side | str | Path,
    corpora: dict[str, list[str]],
    general: dict[str, list[str]] | None = None,
    *,
    block_size: int = 1024,
    batch_size: int = 8,
    prompts: int = 4,
    progress: Any = None,
    device: str | None = None,
) -> dict:
    """Base against adapted on every corpus; the metrics dict (schema vocabx.metrics/1).

    ``base`` is a model name or folder (or a loaded :class:`Side`); ``adapted`` a folder written by
    ``vocabx extend`` or ``vocabx train``, or a merged model (loaded by :func:`load_side` against
    ``base``), or a :class:`Side`. ``corpora`` and ``general`` map a name to its documents.
    ``device``: where both models are scored (None: models on the CPU move to a GPU when there is one,
    and models placed elsewhere stay, :func:`vocabx.models.place`); given :class:`Side` objects, their
    models are moved in place.

    >>> m = evaluate("smollm2-135m", "runs/med/adapter", {"test": texts})   # doctest: +SKIP
    >>> m["corpora"]["test"]["token_reduction"], m["corpora"]["test"]["bpb_change"]  # doctest: +SKIP
    """
    from vocabx.corpus import documents
    from vocabx.metrics import text_windows
    from vocabx.stats import CorpusStats, backend_of, splits_words

    # (read once, before any model loads: a stream such as read_corpus's, or a generator, is a list after)
    for role, given in (("corpus", corpora), ("--general corpus", general)):
        if given is not None and not isinstance(given, dict):
            raise VocabxError(f"evaluate() takes each {role} as a dict of name -> documents, got {type(given).__name__}; pass {{'test': texts}}")
    corpora = {name: list(documents(texts, what=f"evaluation corpus {name}")) for name, texts in (corpora or {}).items()}
    general = None if general is None else {name: list(documents(texts, what=f"evaluation corpus {name}")) for name, texts in general.items()}
    if isinstance(base, os.PathLike):
        base = os.fspath(base)
    loaded = not isinstance(adapted, Side)  # (loaded here: its precision may be set to the base's)
    if loaded:
        if not isinstance(base, (str, Side)) or not (base if isinstance(base, str) else base.label):
            raise VocabxError("evaluate() loads adapted from a folder against its base: pass base as a model name or folder")
        adapted = load_side(base if isinstance(base, str) else base.label, adapted)
    if isinstance(base, str):
        from vocabx.models import load_model, load_tokenizer

        base = Side(load_model(base), load_tokenizer(base), set(), label=base)

    if not corpora:
        raise VocabxError("evaluation needs at least one corpus with text")
    both = sorted(set(corpora) & set(general or {}))
    if both:
        raise VocabxError(f"{', '.join(both)} is given both as a domain corpus and as --general; pass each corpus in one role")
    for name, texts in [*corpora.items(), *(general or {}).items()]:  # (all checked before any is scored)
        if not any(t.strip() for t in texts):
            held = f"its {len(texts)} documents are empty or only whitespace" if texts else "it holds no document"
            raise VocabxError(f"evaluation corpus {name} has no text: {held}; give documents with text")
    from vocabx.models import place

    if loaded and adapted.model.dtype != base.model.dtype:
        # (a merged model is written in float32: scored in its own precision it would look slower, or faster)
        adapted.model.to(base.model.dtype)
    for side in (base, adapted):  # (both where the scoring runs, so their speeds compare)
        place(side.model, device)
    # Windows no longer than either model's context: past it, positions are out of range or untrained.
    from vocabx.models import config_context

    contexts = [c for c in (config_context(base.model.config), config_context(adapted.model.config)) if c]
    block_size = min([block_size, *contexts])
    result: dict = {"schema": METRICS_SCHEMA, "base": base.label, "adapted": adapted.label, "dtype": str(base.model.dtype).replace("torch.", ""), "corpora": {}}
    everything = [(name, texts, "domain") for name, texts in corpora.items()] + [(name, texts, "general") for name, texts in (general or {}).items()]
    for name, texts, role in everything:
        # (the base tokenizer encodes the texts once: for the words, the cut and its token counts)
        backend = backend_of(base.tokenizer)
        encodings = backend.encode_batch(texts, add_special_tokens=False)
        counted = CorpusStats()
        counted.add(texts, encodings, splits_words(backend))
        words = counted.words
        pieces = text_windows(texts, base.tokenizer, block_size, encodings=encodings)  # (cut at the same characters for both)
        b = score(base, texts, words, block_size=block_size, batch_size=batch_size, pieces=pieces, encodings=encodings)
        a = score(adapted, texts, words, block_size=block_size, batch_size=batch_size, pieces=pieces)
        row = {
            "role": role,
            "base": b,
            "adapted": a,
            "token_reduction": round(1 - a["tokens"] / b["tokens"], 5) if b["tokens"] else 0.0,
            "bpb_change": round(a["bpb"] / b["bpb"] - 1, 5) if b["bpb"] else None,
            "speedup": round(a["docs_per_second"] / b["docs_per_second"], 3) if a["docs_per_second"] and b["docs_per_second"] else None,
            "new_token_adoption": a.get("new_token_adoption", 0.0),
        }
        if role == "domain" and prompts:
            row["generation"] = generation_adoption(adapted, texts, prompts=prompts)
        result["corpora"][name] = row
        if progress is not None:
            progress(1)
    return result


def metrics_markdown(metrics: dict) -> str:
    """The readable twin of metrics.json."""
    lines = [
        "# vocabx evaluation",
        "",
        f"Base: `{metrics['base']}`. Adapted: `{metrics['adapted']}`. Schema {metrics['schema']}.",
        "",
        "| corpus | role | tokens base | tokens adapted | reduction | tokens/word base | adapted | bpb base | bpb adapted | bpb change | adoption | speedup |",
        "| :-- | :-- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
    ]
    for name, r in metrics["corpora"].items():
        b, a = r["base"], r["adapted"]
        speedup = f"{r['speedup']:.2f}x" if r["speedup"] else "n/a"
        lines.append(
            f"| {name} | {r['role']} | {b['tokens']:,} | {a['tokens']:,} | {r['token_reduction']:.1%} | {b['tokens_per_word']:.3f} | "
            f"{a['tokens_per_word']:.3f} | {b['bpb']:.4f} | {a['bpb']:.4f} | {r['bpb_change']:+.2%} | {r['new_token_adoption']:.1%} | {speedup} |"
        )
    gens = {k: r["generation"] for k, r in metrics["corpora"].items() if r.get("generation")}
    if gens:
        lines += ["", "New tokens in greedy generations from each corpus's opening words:", ""]
        for name, g in gens.items():
            lines.append(f"- {name}: {g['new_token_share']:.1%} of {g['generated_tokens']} generated tokens ({g['prompts']} prompts)")
    lines += ["", "Bits per byte: summed negative log-likelihood in bits over the text's UTF-8 bytes (lower is better)."]
    return "\n".join(lines) + "\n"


def metrics_plot(metrics: dict) -> bytes:
    """Bits per byte and tokens, base against adapted, per corpus (PNG)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(metrics["corpora"])
    fig = Figure(figsize=(9, 3.6))
    FigureCanvasAgg(fig)
    for k, (key, title) in enumerate((("bpb", "bits per byte (lower is better)"), ("tokens", "tokens"))):
        ax = fig.add_subplot(1, 2, k + 1)
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], [metrics["corpora"][n]["base"][key] for n in names], width=0.4, label="base")
        ax.bar([x + 0.2 for x in xs], [metrics["corpora"][n]["adapted"][key] for n in names], width=0.4, label="adapted")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(names, rotation=15, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def write_metrics(metrics: dict, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """metrics.json, report.md and metrics.png into ``out_dir`` (atomically)."""
    from vocabx.outputs import json_safe, staged_dir

    with staged_dir(out_dir, overwrite=overwrite, marker="metrics.json", what="evaluation") as tmp:
        (tmp / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "report.md").write_text(metrics_markdown(metrics), encoding="utf-8")
        (tmp / "metrics.png").write_bytes(metrics_plot(metrics))
    return Path(out_dir)


def take(texts: Iterable[str], max_docs: int | None, max_chars: int | None) -> list[str]:
    """The first max_docs texts, each cut to max_chars: evaluation on a CPU is bounded by forward passes."""
    out = []
    for text in texts:
        if max_docs is not None and len(out) >= max_docs:
            break
        out.append(text[:max_chars] if max_chars else text)
    return out
