"""Finished jobs per minute, as the database counts them when they end.

A statement trigger on history (migration 0010) adds every statement's finished jobs to
per-minute rows by queue and final state: how many, and how long they ran and waited,
as sums, maxima and counts per bucket of ``BOUNDS``. Reading a day of them never touches
history, and the count is exact (the same transaction that ends the jobs counts them).

Run time is ``completed_at - started_at`` of the last attempt; wait is ``started_at -
start_after``, from when the job was due to when it started (a cancelled job that never
ran has neither). Percentiles are estimated from the buckets (``Timing.quantile``):
exact to the bucket, interpolated inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.db import Database
from shared.queue import validation as check
from shared.queue.window import Window

# Upper bounds in seconds of the buckets, as rollup_bounds() in migration 0010 says: bucket 0
# is below BOUNDS[0], bucket i (1..14) from BOUNDS[i-1] to BOUNDS[i], the last from 1800 s.
BOUNDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
BUCKETS = len(BOUNDS) + 1


@dataclass(frozen=True, slots=True)
class Timing:
    """Durations of some jobs: how many fell in each bucket, their sum and maximum."""

    buckets: tuple[int, ...] = (0,) * BUCKETS
    total_seconds: float = 0.0
    max_seconds: float | None = None

    @classmethod
    def of(cls, buckets: Sequence[int] | None, total: float | None, most: float | None
           ) -> Timing:
        counts = tuple(int(n) for n in (buckets or ()))
        counts = (counts + (0,) * BUCKETS)[:BUCKETS]
        return cls(counts, float(total or 0.0), None if most is None else float(most))

    @property
    def count(self) -> int:
        return sum(self.buckets)

    @property
    def mean(self) -> float | None:
        return self.total_seconds / self.count if self.count else None

    def __add__(self, other: Timing) -> Timing:
        most = [m for m in (self.max_seconds, other.max_seconds) if m is not None]
        return Timing(tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=True)),
                      self.total_seconds + other.total_seconds, max(most) if most else None)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1), estimated: linear inside the bucket holding it, and
        never above the maximum seen. None when there is nothing to measure."""
        if not 0 <= q <= 1:
            raise ValueError(f"a quantile is between 0 and 1, got {q}")
        total = self.count
        if not total:
            return None
        top = self.max_seconds
        rank = q * total
        seen = 0
        for i, n in enumerate(self.buckets):
            if n and seen + n >= rank:
                low = 0.0 if i == 0 else BOUNDS[i - 1]
                high = BOUNDS[i] if i < len(BOUNDS) else (top if top is not None else low)
                if top is not None:
                    high = min(high, top)
                    low = min(low, high)
                return low + (high - low) * max(rank - seen, 0) / n
            seen += n
        return top


@dataclass(frozen=True, slots=True)
class Rollup:
    """The jobs of ``queue`` that ended in ``state`` during the bucket starting at ``at``."""

    at: datetime
    queue: str
    state: str
    count: int
    run: Timing
    wait: Timing


async def rollups(db: Database, window: Window, *, queue: str | None = None) -> list[Rollup]:
    """Finished jobs per bucket of ``window``, queue and final state (buckets with none
    are left out), oldest first; one queue's when ``queue`` is given."""
    if queue is not None:
        queue = check.queue_name(queue)
    rows = await db.pool.fetch(db.queries.job_rollups, window.start, window.end,
                               float(window.step), queue)
    return [Rollup(r["at"], r["queue"], r["state"], r["n"],
                   Timing.of(r["run_buckets"], r["run_seconds"], r["run_max"]),
                   Timing.of(r["wait_buckets"], r["wait_seconds"], r["wait_max"]))
            for r in rows]
