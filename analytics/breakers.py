"""Breaker openings, recorded for the nightly run's time line.

A source's circuit breaker lives in the memory of each worker process (see
``analytics.breaker``) and its state is a metric of that process, gone with it. To draw a
night's outages afterwards, each opening is written to ``breaker_openings`` by the job of
that worker that saw it open, once its collection is over (``record``): one small insert
per opening, a few a minute per worker while a source stays down (one per cool-down),
none while every source answers. Kept ``KEEP_DAYS`` days; the night's summary job
forgets older ones (``prune``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from analytics.models import BreakerOpening
from shared.db import Database
from shared.queue import InvalidInput

KEEP_DAYS = 35
MAX_LISTED = 5000


async def record(db: Database, worker_id: str, openings: Sequence[BreakerOpening]) -> int:
    """Write ``openings`` seen by ``worker_id`` in one statement; returns how many."""
    if not openings:
        return 0
    await db.pool.execute(
        db.queries.insert_breaker_openings, [o.source for o in openings],
        [o.opened_at for o in openings], [o.after_probe for o in openings], worker_id[:200])
    return len(openings)


async def openings(
    db: Database, since: datetime, until: datetime, *, limit: int = MAX_LISTED,
) -> list[BreakerOpening]:
    """The openings of [since, until), oldest first, at most ``limit``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LISTED:
        raise InvalidInput("limit", f"must be a whole number from 1 to {MAX_LISTED}")
    rows = await db.pool.fetch(db.queries.list_breaker_openings, since, until, limit)
    return [BreakerOpening.from_record(row) for row in rows]


async def prune(db: Database, *, keep_days: float = KEEP_DAYS) -> int:
    """Forget openings older than ``keep_days``; returns how many."""
    return int(await db.pool.fetchval(db.queries.prune_breaker_openings, keep_days * 86400))
