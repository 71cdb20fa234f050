"""Stop a worker of ``accelerate launch`` / torchrun whose launcher is gone.

torchrun starts each worker in a session of its own, so a signal to the launcher's process group (a
``kill -9`` of the job, a scheduler ending it) reaches the launcher alone, and the workers, reparented
to init or a subreaper, would train on and write into the output folder. While training runs,
:func:`launcher_watchdog` ends the process from a daemon thread (exit code :data:`EXIT_ORPHANED`, one
line on stderr) as soon as its parent is no longer the one it started with: the launcher died.

It looks for a change, not for a parent of 1, so a launcher that is itself PID 1 (a container's entry
point) never sets it off. It runs only where torchrun's elastic agent started the process
(``TORCHELASTIC_RUN_ID`` set): a plain run may well outlive its shell (``nohup``), on purpose.
``prctl(PR_SET_PDEATHSIG)`` is not used: it follows the thread that forked the worker, not the
launcher's process. What a kill leaves is safe: checkpoints are renamed into place whole.

The parent compared with is the one the process had when :mod:`vocabx.train` was first imported, so a
launcher that dies while the worker reads its corpus, before :func:`train`, stops it as training begins.
What it leaves out: a launcher that dies before that import goes unnoticed (the parent noted is then
already init or a subreaper), and so does one that dies while another process of the same pid takes
its place between two looks (pids are reused only after wrapping around).
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator

EXIT_ORPHANED = 3  # (the CLI's code for a failure that is not the input's fault)
INTERVAL = 0.5  # seconds between two looks at the parent

# (this process and its parent when vocabx.train was first imported, near the worker's start: a launcher
# that dies while the worker reads its corpus, before train(), is noticed too; a process forked since has
# another pid and compares with its own parent)
_STARTED = (os.getpid(), os.getppid())


def launched_by_torchrun() -> bool:
    """Whether torchrun's elastic agent (which ``accelerate launch`` runs for several processes) started
    this process and is its parent."""
    return bool(os.environ.get("TORCHELASTIC_RUN_ID")) and "LOCAL_RANK" in os.environ


@contextlib.contextmanager
def launcher_watchdog(output_dir: str, *, interval: float = INTERVAL, enabled: bool | None = None) -> Iterator[None]:
    """While the block runs, end this process when its parent (the launcher) changes; ``enabled`` None:
    only under torchrun (:func:`launched_by_torchrun`)."""
    if not (launched_by_torchrun() if enabled is None else enabled):
        yield
        return
    parent = _STARTED[1] if _STARTED[0] == os.getpid() else os.getppid()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(interval):
            if os.getppid() != parent:
                rank = os.environ.get("RANK", "?")
                line = (
                    f"vocabx: error: the launcher that started this process (pid {parent}) is gone, killed or crashed; "
                    f"process {rank} stops training into {output_dir} (its checkpoints are whole: launch again with --resume)\n"
                )
                with contextlib.suppress(OSError):
                    os.write(2, line.encode())  # (the file descriptor: no lock a blocked thread may hold)
                os._exit(EXIT_ORPHANED)

    thread = threading.Thread(target=watch, name="vocabx-launcher-watchdog", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
