"""The two things vocabx raises on bad input: an error that stops, a warning that does not.

Both carry a message written for the user: it names the input, the value received and the fix, so the
CLI can print it as one line without a traceback.
"""


class VocabxError(Exception):
    """Bad input or an unmet precondition; the CLI prints ``vocabx: error: <message>`` and exits 2."""


class VocabxWarning(UserWarning):
    """Something was skipped or repaired (a binary file, invalid UTF-8); the work goes on."""
