"""Numbers that arrive as text from outside, read as written: ASCII digits, nothing else.

Python's ``int()`` and ``float()`` read much more than a number as a person or an HTTP
peer writes one: digits of every script (``int("١٢")`` is 12, ``int("１２")`` too), a
sign, spaces around it, underscores between digits (``"1_000"``), and for ``float`` an
exponent, ``inf`` and ``nan``. ``str.isdigit()`` says yes to ``"²"``, which ``int()``
then refuses. Read through them, a header, a path segment or a flag means something
other than what any other reader of it sees (a proxy, a log search, the peer itself).

``whole`` and ``decimal`` accept only what they say, and raise ``ValueError`` for the
rest, as ``int()`` does, so callers keep their error handling.
"""

from __future__ import annotations

import re

_WHOLE = re.compile(r"[0-9]+")
_CANONICAL = re.compile(r"0|[1-9][0-9]*")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
MAX_DIGITS = 30  # more than any count or size here; bounds the work of a hostile value


def whole(text: str, *, canonical: bool = False) -> int:
    """A whole number written in ASCII digits (``"42"``; ``"042"`` too unless
    ``canonical``, which also refuses leading zeros, as in an id)."""
    pattern = _CANONICAL if canonical else _WHOLE
    if not isinstance(text, str) or len(text) > MAX_DIGITS or not pattern.fullmatch(text):
        raise ValueError(f"not a whole number written in ASCII digits: {text!r:.60}")
    return int(text)


def decimal(text: str) -> float:
    """A number written in ASCII digits with at most one decimal point (``"10"``,
    ``"0.25"``): no sign, exponent, ``inf`` or ``nan``."""
    if not isinstance(text, str) or len(text) > MAX_DIGITS or not _DECIMAL.fullmatch(text):
        raise ValueError(f"not a number written in ASCII digits: {text!r:.60}")
    return float(text)
