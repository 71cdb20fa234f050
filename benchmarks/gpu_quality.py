"""Does longer training close `lora+tokens`' gap to `lora` on MedQuAD's other sites? A GPU run.

At `vocabx adapt`'s standard budget (300 steps of 4 x 512 tokens) on a CPU, `lora` on the base model
stays ahead of `lora+tokens` on MedQuAD test.jsonl's sites (benchmarks/RESULTS.md); whether more
training closes that gap is the open question, and a CPU pair ten times longer takes about 20 hours
here. On an H100 it takes minutes, with the real model's weights: the embedded model (a 98 MB GGUF) is
too large for one call's 64 MiB working tree, so it travels in two parts over two calls to the same
warm machine (ignored files that a call left there are kept for the next one).

On the GPU machine, in order (the second part is sent while the machine is still warm from the first):

1. ``vocabx adapt`` at a long budget: the standard budget's analysis, 8,192 tokens and fitted rows,
   then ``--long-steps`` steps of 4 x 2048 tokens (default 750: ten times the standard budget's
   training tokens, in steps that cost about what a 4 x 512 one does on an H100, where a step this small
   waits on kernel launches) at the standard LoRA rate, scored on the standard budget's 48 test and 48
   general documents (4,000 characters);
2. its `lora` pair: LoRA on the base model, same steps, documents, seed, rate and rank
   (``bench_adapt_lora.lora_pair``);
3. the standard budget itself on the same analysis and rows (a check of the GPU run against the CPU
   figures in RESULTS.md), and 4. its `lora` pair.

Each step's figures are written to ``$OUT/gpu_quality.json`` as soon as it ends, so a call stopped at its
time limit still returns what it finished. bf16 on the GPU, fp32 on the CPU: the CPU figures are the
floor's; these answer how the gap moves with training.

    python benchmarks/gpu_quality.py --prepare        # here: build/gq-1 (part 1, corpora, gguf wheel), build/gq-2
    # device run, carry ["build/gq-1"]:  bash benchmarks/gpu_quality.sh --receive
    # device run at once, carry ["build/gq-2"], timeout_s 600:  bash benchmarks/gpu_quality.sh
    python benchmarks/gpu_quality.py --smoke          # here, on CPU: every step on tiny budgets and the sample corpora

The machine stays warm 30 s after a call: make the second call at once. If it finds part 1 gone (the
machine went back between the calls), it stops at once saying so; with the device time left, send both
again and shorten the run (``bash benchmarks/gpu_quality.sh --long-steps 300 --only gq-long,gq-long:lora``).
The four steps should take 6-9 minutes on an H100, estimated from the throughput measured there (not yet run).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"
BUILD = ROOT / "build"
MODEL = "smollm2-135m"
CALL_LIMIT = 64 * 1024 * 1024  # what one device call carries, the working tree included
MARGIN = 2 * 1024 * 1024
# The corpora the GPU run reads, gzipped into part 1 (the machine has no ../shared) in the same layout, so
# that reading the general folder gives the documents, in the order, that `--general ../shared/corpora/general`
# gave the CPU runs (its SOURCE.md files included: the folder reader takes .md files as documents).
CORPORA = [
    "medical/medquad/train.jsonl",
    "medical/medquad/test.jsonl",
    "general/web-ewt/SOURCE.md",
    "general/web-ewt/test.jsonl",
    "general/wikipedia-xquad/SOURCE.md",
    "general/wikipedia-xquad/test.jsonl",
]


def tree_bytes() -> int:
    """Bytes of the working tree that every device call sends (tracked and untracked, not ignored, files)."""
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True).stdout
    return sum((ROOT / name).stat().st_size for name in listed.decode().split("\0") if name and (ROOT / name).is_file())


def prepare(out: Path = BUILD, corpora: Path = SHARED, wheel: bool = True, tree: int | None = None) -> dict:
    """Split the embedded model's GGUF into two parts that each fit a call beside the working tree; put the
    gzipped corpora (and the gguf wheel, which the GPU machine lacks) with the first. Returns the manifest."""
    from vocabx.models import EMBEDDED, _gguf_path

    missing = [rel for rel in CORPORA if not (corpora / rel).is_file()]
    if missing:
        raise SystemExit(f"gpu_quality.py --prepare: {corpora} lacks {', '.join(missing)}; pass --corpora DIR (../shared/corpora)")
    first, second = out / "gq-1", out / "gq-2"
    for folder in (first, second):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for rel in CORPORA:
        target = first / "corpora" / f"{rel}.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(corpora / rel, "rb") as src, gzip.open(target, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst)
    wheels = first / "wheels"
    wheels.mkdir()
    if wheel:
        from importlib.metadata import version

        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", f"gguf=={version('gguf')}", "-d", str(wheels)],
            check=True,
        )
    gguf = _gguf_path(EMBEDDED[MODEL])
    data = gguf.read_bytes()
    tree = tree_bytes() if tree is None else tree
    extras = sum(f.stat().st_size for f in first.rglob("*") if f.is_file())
    split = CALL_LIMIT - tree - extras - MARGIN
    if split <= 0 or len(data) - split > CALL_LIMIT - tree - MARGIN:
        raise SystemExit(f"gpu_quality.py --prepare: {len(data):,} bytes of GGUF, {tree:,} of working tree and {extras:,} of corpora do not fit two calls of {CALL_LIMIT:,}")
    (first / "gguf.part").write_bytes(data[:split])
    (second / "gguf.part").write_bytes(data[split:])
    manifest = {
        "file": gguf.name,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "parts": [split, len(data) - split],
        "corpora": sorted(CORPORA),
        "wheels": sorted(p.name for p in wheels.iterdir()),
        "call_bytes": [tree + extras + split, tree + len(data) - split],
    }
    (first / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def assemble(parts: Path = BUILD, work: Path = BUILD / "gq") -> Path:
    """The embedded model converted from the two parts into ``$VOCABX_HOME`` (the folder ``load_model`` reads)."""
    from vocabx.models import EMBEDDED, _MARKER, _convert_gguf, atomic_dir, vocabx_home

    target = vocabx_home() / "models" / MODEL
    if (target / _MARKER).is_file():
        return target
    manifest_file = parts / "gq-1" / "manifest.json"
    if not manifest_file.is_file() or not (parts / "gq-2" / "gguf.part").is_file():
        raise SystemExit(f"gpu_quality.py: {parts}/gq-1 (manifest, part 1) and {parts}/gq-2 (part 2) must both be here; carry each in its call")
    manifest = json.loads(manifest_file.read_text())
    work.mkdir(parents=True, exist_ok=True)
    gguf = work / manifest["file"]
    digest_of = hashlib.sha256()
    with open(gguf, "wb") as out:
        for part in (parts / "gq-1" / "gguf.part", parts / "gq-2" / "gguf.part"):
            data = part.read_bytes()
            digest_of.update(data)
            out.write(data)
    digest = digest_of.hexdigest()
    if digest != manifest["sha256"]:
        raise SystemExit(f"gpu_quality.py: the assembled {gguf} has sha256 {digest}, not the manifest's {manifest['sha256']}: a part is stale; prepare and carry both again")
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(target) as tmp:
        _convert_gguf(EMBEDDED[MODEL], gguf, tmp)
    gguf.unlink()
    return target


def run_all(corpora: Path, runs: Path, out: Path, budgets: dict, order: list[str]) -> dict:
    """The steps of the module's docstring, in ``order``; figures written to ``out/gpu_quality.json`` after each."""
    import torch

    from bench_adapt_lora import lora_pair
    from vocabx import adapt as adapt_module
    from vocabx.corpus import read_corpus

    adapt_module.BUDGETS.update(budgets)
    train = list(read_corpus([corpora / "medical" / "medquad" / "train.jsonl.gz"]))
    test = list(read_corpus([corpora / "medical" / "medquad" / "test.jsonl.gz"]))
    general = list(read_corpus([corpora / "general"]))
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    import peft
    import transformers

    results: dict = {
        "device": device,
        "software": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "budgets": {name: asdict(plan) for name, plan in budgets.items()},
        "steps": {},
    }

    def save() -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_quality.json").write_text(json.dumps(results, indent=2) + "\n")

    save()
    first = None
    for step in order:
        name, _, side = step.partition(":")
        run = runs / name
        started = time.monotonic()
        try:
            if side == "lora":
                figures = lora_pair(run, train, test, general, run / "lora-baseline")
            else:
                if first is not None and not run.exists():
                    # the same analysis and fitted rows: adapt skips both stages (their inputs are the same)
                    shutil.copytree(runs / first, run, ignore=shutil.ignore_patterns("adapter", "evaluation", "lora-baseline"))
                metrics = adapt_module.adapt(train, run, model=MODEL, budget=name, general=general, eval_texts=test, log=lambda line: print(f"vocabx: {line}", flush=True))
                first = first or name
                state = json.loads((run / "run.json").read_text())
                figures = {"metrics": metrics, "stages": state["stages"]}
        except Exception as exc:  # noqa: BLE001 - record it and go on to the next step
            figures = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"gpu_quality.py: {step} failed: {figures['error']}", file=sys.stderr, flush=True)
        figures["seconds"] = round(time.monotonic() - started, 1)
        results["steps"][step] = figures
        save()
        print(f"gpu_quality.py: {step} done in {figures['seconds']} s", flush=True)
    return results


def budgets_for(long_steps: int, smoke: bool) -> dict:
    from vocabx.adapt import BUDGETS

    standard = BUDGETS["standard"]
    if smoke:  # the same code path on a CPU in a minute or two
        standard = replace(standard, new_tokens=48, fit_steps=2, max_steps=2, batch_size=1, block_size=256, eval_docs=2, eval_chars=300)
        long_steps = 4
    # (batch 4 and a fit block of at most 256 keep the extend stage's inputs, so the long run's rows are the standard run's)
    long = replace(standard, max_steps=long_steps, block_size=4 * standard.block_size)
    return {"gq-long": long, "gq-standard": standard}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare", action="store_true", help="here: write build/gq-1 and build/gq-2 for the two device calls")
    parser.add_argument("--receive", action="store_true", help="on the GPU machine, first call: check part 1 arrived")
    parser.add_argument("--smoke", action="store_true", help="here, on CPU: the whole path on tiny budgets and the repository's sample corpora")
    parser.add_argument("--corpora", type=Path, default=SHARED, help="with --prepare: the shared corpora (default ../shared/corpora)")
    parser.add_argument("--build", type=Path, default=BUILD, help="where the parts are (default build/)")
    parser.add_argument("--long-steps", type=int, default=750, help="training steps of 4 x 2048 tokens of the long run (default 750)")
    parser.add_argument("--only", default="gq-long,gq-long:lora,gq-standard,gq-standard:lora", help="the steps, in order")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", BUILD / "gq-out")))
    args = parser.parse_args()
    if args.prepare:
        manifest = prepare(args.build, args.corpora)
        print(json.dumps(manifest, indent=2))
        print("then: device run carry [build/gq-1] `bash benchmarks/gpu_quality.sh --receive`, at once device run carry [build/gq-2] `bash benchmarks/gpu_quality.sh` (timeout_s 600)")
        return 0
    if args.receive:
        manifest_file = args.build / "gq-1" / "manifest.json"
        if not manifest_file.is_file():
            print(f"gpu_quality.py --receive: {manifest_file} did not arrive; carry build/gq-1", file=sys.stderr)
            return 2
        print("part 1 here:", manifest_file.read_text())
        return 0
    if args.smoke:
        return smoke(args.out)
    assemble(args.build)
    corpora = args.build / "gq-1" / "corpora"
    run_all(corpora, args.build / "gq-runs", args.out, budgets_for(args.long_steps, False), args.only.split(","))
    return 0


def smoke(out: Path) -> int:
    """Prepare, assemble and convert from parts, then every step on tiny budgets, all in a scratch folder."""
    import random
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        scratch_path = Path(scratch)
        corpora = scratch_path / "shared"
        docs = [line for line in (ROOT / "corpora" / "medical" / "clinical_notes.jsonl").read_text().splitlines() if line.strip()]
        random.Random(0).shuffle(docs)
        general = (ROOT / "corpora" / "general" / "general.jsonl").read_text()
        texts = {"medical/medquad/train.jsonl": "\n".join(docs[:60]), "medical/medquad/test.jsonl": "\n".join(docs[60:80])}
        for rel in CORPORA:
            (corpora / rel).parent.mkdir(parents=True, exist_ok=True)
            (corpora / rel).write_text(texts.get(rel, general if rel.endswith(".jsonl") else "# Source\n\nA sample.") + "\n")
        build = scratch_path / "build"
        prepare(build, corpora, wheel=False, tree=tree_bytes())
        os.environ["VOCABX_HOME"] = str(scratch_path / "home")
        assemble(build)
        parts = build / "gq-1" / "corpora"
        run_all(parts, scratch_path / "runs", out, budgets_for(0, True), "gq-long,gq-long:lora,gq-standard,gq-standard:lora".split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
