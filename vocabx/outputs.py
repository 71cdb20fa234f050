"""Output folders that appear whole or not at all, and that never overwrite the wrong thing.

Every stage writes its artifacts into a hidden staging folder beside the target and renames it into
place at the end, so an interrupted run leaves no folder that looks complete. An existing target is
replaced only with ``overwrite`` and only when it holds the stage's own marker file (an earlier run's
``report.json`` or ``vocabx.json``), so a mistyped ``-o`` cannot wipe a home or source folder.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterator

from vocabx.errors import VocabxError


def check_output_dir(out_dir: str | Path, overwrite: bool, marker: str, what: str) -> Path:
    """Refuse an output folder that cannot be written; return it as an absolute path.

    ``marker`` is the file an earlier run of the same stage leaves there; ``what`` names the stage's
    artifact in messages ('report', 'extended model').
    """
    target = Path(os.path.abspath(out_dir))
    # The folder is replaced by a rename; done to the working folder it would strand the process in a
    # deleted directory.
    if Path.cwd().is_relative_to(target.resolve()):
        raise VocabxError(f"output folder {out_dir} is the current folder or holds it; pick another -o folder")
    if target.exists() and not target.is_dir():
        raise VocabxError(f"output {out_dir} is a file, not a folder; pick another -o folder")
    if not target.is_dir() or not any(target.iterdir()):
        return target
    if not overwrite:
        raise VocabxError(
            f"output folder {out_dir} exists and is not empty; pass --overwrite (overwrite=True in Python) to replace it or pick another -o folder"
        )
    if not (target / marker).is_file():
        raise VocabxError(
            f"output folder {out_dir} is not empty and holds no {marker}, so it is not an earlier {what}; "
            f"--overwrite only replaces {what} folders: pick another -o folder"
        )
    return target


@contextlib.contextmanager
def staged_dir(out_dir: str | Path, *, overwrite: bool, marker: str, what: str) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``out_dir``, on failure it is removed."""
    target = check_output_dir(out_dir, overwrite, marker, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    # mkdir rather than tempfile.mkdtemp, whose 0700 would make the finished folder private.
    staging = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    staging.mkdir()
    try:
        yield staging
        _public(staging)
        move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _public(folder: Path) -> None:
    """Give every file the permissions of a normally created one; some writers use private temp files."""
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(0o666 & ~umask)


def move_into_place(staging: Path, out_dir: Path) -> None:
    """Rename ``staging`` to ``out_dir``; an existing ``out_dir`` is set aside first and restored on failure."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    old = staging.with_name(staging.name + ".old")
    os.replace(out_dir, old)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def json_safe(value: object) -> object:
    """``value`` with every NaN or infinite float replaced by None (``null``).

    ``json.dumps`` writes them as ``NaN`` and ``Infinity``, which is not JSON: jq, JavaScript's
    ``JSON.parse`` and Go refuse the whole file. A figure that could not be measured (a model whose loss
    is not finite) is written as ``null``; the in-memory result keeps the float.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
