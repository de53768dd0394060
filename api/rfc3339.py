"""RFC 3339 timestamps (the ``date-time`` format of JSON Schema) to aware datetimes.

Python's ``fromisoformat`` accepts more than RFC 3339 (no offset, week dates) and less
(lower-case ``t``/``z``, leap seconds), so the grammar is matched here. Every valid
timestamp is read: a leap second as the first instant of the next minute, and an instant
past the year 9999 in UTC as the last second of 9999 (one before year 1 as year 1's first,
which the input schema's years 1970-9999 refuse before: asyncpg would store it as
-infinity).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_GRAMMAR = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,  # \d is 0-9 only, not every script's digits
)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)  # finite: not asyncpg's infinity


def parse(text: str) -> datetime | None:
    """The instant ``text`` names, in UTC; None when it is not an RFC 3339 date-time."""
    match = _GRAMMAR.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    fraction = match[7]
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if hour > 23 or minute > 59 or second > 60:
        return None
    if match[8]:
        offset = timedelta(0)
    else:
        off_hours, off_minutes = int(match[10]), int(match[11])
        if off_hours > 23 or off_minutes > 59:
            return None
        offset = timedelta(hours=off_hours, minutes=off_minutes)
        if match[9] == "-":
            offset = -offset
    leap = second == 60
    try:
        local = datetime(year, month, day, hour, minute, 59 if leap else second, micro,
                         tzinfo=timezone(offset))
    except ValueError:  # day 31 of a 30-day month, year 0, ...
        return None
    try:
        instant = local.astimezone(UTC)
        if leap:
            instant = instant.replace(microsecond=0) + timedelta(seconds=1)
    except OverflowError:
        return _EARLIEST if year < 5000 else _LATEST
    return instant
