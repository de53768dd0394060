"""Queue depth and fleet load over time: samples that the maintenance leader takes.

What is waiting or running is a state, not an event, so no trigger can keep its history
cheaply; instead the leader samples it every ``MS8_SAMPLE_SECONDS`` in one statement (one
pass over the hot table): per queue the waiting and active jobs and the age of the oldest
due one, and for the fleet the workers seen lately, their slots and the busy ones.
Samples are keyed by their time, so two leaders for a moment only write two samples; the
readers take each bucket's maxima (the peak of the bucket), which absorbs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.conn import Conn, one
from shared.db import Database
from shared.queue import validation as check
from shared.queue.window import Window


@dataclass(frozen=True, slots=True)
class QueueSample:
    """The peak of the samples of ``queue`` in the bucket starting at ``at``."""

    at: datetime
    queue: str
    waiting: int
    active: int
    oldest_waiting_seconds: float


@dataclass(frozen=True, slots=True)
class FleetSample:
    """The peak of the fleet's samples in the bucket starting at ``at``."""

    at: datetime
    workers: int
    slots: int
    busy: int


async def record_samples(
    db: Database, *, seen_within: float, conn: Conn | None = None,
) -> int:
    """Sample every queue and the fleet now (workers count when seen in the last
    ``seen_within`` seconds); returns how many queues were sampled."""
    seconds = check.seconds(seen_within, "seen_within", 0, 30 * 86400, low_open=True)
    row = one(await (conn or db.pool).fetchrow(db.queries.record_samples, seconds))
    return int(row["queues"])


async def queue_samples(
    db: Database, window: Window, *, queue: str | None = None,
) -> list[QueueSample]:
    """Per bucket of ``window`` (those with a sample) and queue, oldest first."""
    if queue is not None:
        queue = check.queue_name(queue)
    rows = await db.pool.fetch(db.queries.queue_depth_samples, window.start, window.end,
                               float(window.step), queue)
    return [QueueSample(r["at"], r["queue"], r["waiting"], r["active"],
                        r["oldest_waiting_seconds"]) for r in rows]


async def fleet_samples(db: Database, window: Window) -> list[FleetSample]:
    """Per bucket of ``window`` (those with a sample), oldest first."""
    rows = await db.pool.fetch(db.queries.fleet_load_samples, window.start, window.end,
                               float(window.step))
    return [FleetSample(r["at"], r["workers"], r["slots"], r["busy"]) for r in rows]
