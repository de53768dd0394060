"""A stretch of time cut into equal buckets, for reading how numbers moved.

Buckets are aligned on the Unix epoch (as ``date_bin`` in sql/queries/timelines.sql
aligns them), so an instant always falls in the same bucket whatever range is asked
for. The bucket width is the smallest of ``STEPS`` that covers the range in at most
``MAX_BUCKETS`` buckets: a minute for an hour, ten minutes for a day, six hours for a
month. Rollups are per minute, so no bucket is narrower. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from shared.queue.errors import InvalidInput

STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
# A day in ten-minute buckets, plus the one that an unaligned start adds.
MAX_BUCKETS = 145
MAX_HOURS = 31 * 24
# Buckets end before the largest instant Python and asyncpg both hold.
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(name, "must be a datetime with a time zone")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """``count`` buckets of ``step`` seconds from ``start`` (a multiple of ``step`` since
    the epoch)."""

    MAX_HOURS: ClassVar[int] = MAX_HOURS

    start: datetime
    step: int
    count: int

    @classmethod
    def covering(cls, since: datetime, until: datetime) -> Window:
        """The buckets that cover [since, until), at the finest step that fits."""
        since, until = _aware(since, "since"), min(_aware(until, "until"), _LATEST)
        if until <= since:
            raise InvalidInput("until", "must be later than since")
        if until - since > timedelta(hours=MAX_HOURS):
            raise InvalidInput("since", f"the range is at most {MAX_HOURS} hours")
        first, last = since.timestamp(), until.timestamp()
        for step in STEPS:
            start = math.floor(first / step) * step
            count = max(1, math.ceil((last - start) / step))
            if count <= MAX_BUCKETS:
                break
        return cls(datetime.fromtimestamp(start, UTC), step, count)

    @classmethod
    def last(cls, hours: float, until: datetime | None = None) -> Window:
        """The ``hours`` before ``until`` (default: now)."""
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not (
                0 < hours <= MAX_HOURS):
            raise InvalidInput("hours", f"must be more than 0 and at most {MAX_HOURS}")
        end = min(datetime.now(UTC) if until is None else _aware(until, "until"), _LATEST)
        return cls.covering(end - timedelta(hours=hours), end)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.step * self.count)

    @property
    def buckets(self) -> list[datetime]:
        return [self.start + timedelta(seconds=self.step * i) for i in range(self.count)]

    def index(self, at: datetime) -> int | None:
        """The bucket ``at`` falls in, or None outside the window."""
        i = math.floor((at - self.start).total_seconds() / self.step)
        return i if 0 <= i < self.count else None
