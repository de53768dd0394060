"""Opaque page cursors.

A cursor stands for "the items before this one" in a newest-first keyset listing. It is
16 hexadecimal digits (the id, zero-padded, below 2**63), so that every string of that
form is a valid cursor and every other string is refused with 400 ``bad_cursor``.
Clients must treat it as opaque: only ``next_cursor`` values are meant to be sent back.
"""

from __future__ import annotations

from api.errors import ApiError
from api.schemas import CURSOR_PATTERN, MAX_ID
from api.validator import compiled_pattern


def encode(before_id: int) -> str:
    if not 0 <= before_id <= MAX_ID:
        raise ValueError(f"cursor id out of range: {before_id}")
    return f"{before_id:016x}"


def decode(cursor: str | None) -> int | None:
    """The id the page must end before, or None for the first page."""
    if cursor is None:
        return None
    if not compiled_pattern(CURSOR_PATTERN).fullmatch(cursor):
        raise ApiError("bad_cursor", f"{cursor[:40]!r} is not a cursor this API handed out",
                       field="cursor")
    return int(cursor, 16)


def next_cursor(ids: list[int], limit: int) -> str | None:
    """The cursor of the page after one whose items have ``ids`` (None when it was the last)."""
    if len(ids) < limit or not ids:
        return None
    return encode(ids[-1])
