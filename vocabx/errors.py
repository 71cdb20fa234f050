"""The two things vocabx raises on bad input: an error that stops, a warning that does not.

Both carry a message written for the user: it names the input, the value received and the fix, so the
CLI can print it as one line without a traceback.
"""

from __future__ import annotations

import json
import os
from typing import Any


class VocabxError(Exception):
    """Bad input or an unmet precondition; the CLI prints ``vocabx: error: <message>`` and exits 2."""


class VocabxWarning(UserWarning):
    """Something was skipped or repaired (a binary file, invalid UTF-8); the work goes on."""


def read_json(path: "str | os.PathLike[str]", fix: str, *, what: str = "") -> Any:
    """The JSON in ``path``; a file that cannot be read or parsed is a :class:`VocabxError` naming the
    file (after ``what``, such as "report "), where it breaks, and ``fix`` (what to do about it)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise VocabxError(f"{what}{os.fspath(path)} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); {fix}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VocabxError(f"cannot read {what}{os.fspath(path)}: {exc}; {fix}") from None


def check_holdout(value: Any, *, needed: str | None = None, what: str = "") -> float:
    """``--holdout`` as every command checks it: a share of the documents in [0, 0.5], 0 holding none out,
    or in (0, 0.5] where the command needs held-out documents (``needed`` says why, and the way out).
    ``what`` says what the share is for in this command. Returns it as a float.

    0.1 -> 0.1;  0 -> 0.0;  0 with needed="..." -> VocabxError;  0.7 -> VocabxError
    """
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and (0 <= value <= 0.5 if needed is None else 0 < value <= 0.5):
        return float(value)
    allowed = "[0, 0.5], 0 for none" if needed is None else "(0, 0.5]"
    raise VocabxError(f"--holdout must be a share of the documents in {allowed}, got {value!r}" + (f" ({what})" if what else "") + (f"; {needed}" if needed else ""))
