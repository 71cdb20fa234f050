"""Pieces the benchmark scripts share: writing their raw figures, and the common training recipe's
packed blocks as a torch Dataset for transformers' ``Trainer`` with a callback that times each step.

The scripts run as scripts, so this folder is on ``sys.path``; torch and transformers are imported
when called, so the GPU machine (no ``datasets``) and ``--help`` need neither at import.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable


SCORED_GENERAL_DOCS = 100
"""The first documents of each general corpus file, where the benchmarks draw their scored general
sample from: text used for ranking (``--reference``) or replayed in training comes after them."""


def numbered_documents(files: Iterable[Path]) -> list[tuple[int, str]]:
    """Every document of ``files`` with its place in its own file, in order:
    ``[(0, a0), (1, a1), ..., (0, b0), (1, b1), ...]``."""
    from vocabx import read_corpus

    return [(i, text) for f in files for i, text in enumerate(read_corpus(f))]


def documents_after(files: Iterable[Path], skip: int = SCORED_GENERAL_DOCS) -> list[str]:
    """The documents of ``files`` after the first ``skip`` of each file (by default the general text that
    is never scored: ``documents_after(GENERAL)``)."""
    return [text for i, text in numbered_documents(files) if i >= skip]


def write_results(path: Path, results: dict, *, ensure_ascii: bool = True) -> None:
    """Write a benchmark's raw figures as indented JSON to ``path`` (folders made) and print them."""
    text = json.dumps(results, indent=2, ensure_ascii=ensure_ascii)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(text)


def blocks_dataset(blocks: Any) -> Any:
    """Rows of a 2-D array of token ids as ``{"input_ids", "labels"}`` examples (labels = inputs; the model shifts)."""
    import torch

    class Blocks(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(blocks)

        def __getitem__(self, i: int) -> dict:
            ids = torch.as_tensor(blocks[i].astype("int64"))
            return {"input_ids": ids, "labels": ids}

    return Blocks()


def step_timer(synchronize: Callable[[], None] | None = None) -> Any:
    """A ``TrainerCallback`` whose ``times`` lists each step's seconds; ``synchronize`` (such as
    ``torch.cuda.synchronize``) runs at both ends of a step so queued GPU work is counted in its step."""
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_step_begin(self, *a: Any, **k: Any) -> None:
            if synchronize is not None:
                synchronize()
            self.start = time.perf_counter()

        def on_step_end(self, *a: Any, **k: Any) -> None:
            if synchronize is not None:
                synchronize()
            self.times.append(time.perf_counter() - self.start)

    return Timer()
