"""What monitoring reads about the queues: depth, age, finished totals, the fleet.

One statement (``queue_stats``) per read, so a scrape costs one round trip whatever the
number of queues. Every API replica reads the same numbers; a scraper aggregates them
with ``max by (queue, state)`` (see docs/operations.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.db import Database


@dataclass(frozen=True, slots=True)
class Stat:
    """One value: ``metric`` as named in sql/queries/stats.sql; ``queue`` and ``state``
    are '' where they do not apply."""

    metric: str
    queue: str
    state: str
    value: float


async def queue_stats(db: Database, *, seen_within: float = 180.0) -> list[Stat]:
    """The numbers; a worker counts as serving its queues when seen within
    ``seen_within`` seconds."""
    rows = await db.pool.fetch(db.queries.queue_stats, seen_within)
    return [Stat(r["metric"], r["queue"], r["state"], r["value"]) for r in rows]
