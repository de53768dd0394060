"""Nightly runs: read them, and write a night's summary when its batch has ended.

The batch counts its jobs by state (completed, failed, cancelled); a completed job wrote
a complete or a partial snapshot, so the split of "completed" comes from the snapshots
the batch's jobs wrote. The sources that failed most are counted from the same snapshots
(a failed job is one whose every source failed, on every attempt).
"""

from __future__ import annotations

from datetime import date

import orjson

from analytics import snapshots
from analytics.models import NightlyRun
from shared import queue
from shared.db import Database
from shared.queue import InvalidInput, NotFound

MAX_PAGE = 200


async def get(db: Database, night: date) -> NightlyRun:
    row = await db.pool.fetchrow(db.queries.get_nightly_run, night)
    if row is None:
        raise NotFound("nightly run", night.isoformat())
    return NightlyRun.from_record(row)


async def list_runs(
    db: Database, *, before: date | None = None, limit: int = 30,
) -> list[NightlyRun]:
    """Runs, latest night first, before the night ``before`` (a keyset cursor)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be a whole number from 1 to {MAX_PAGE}")
    rows = await db.pool.fetch(db.queries.list_nightly_runs, before, limit)
    return [NightlyRun.from_record(row) for row in rows]


async def write_summary(db: Database, night: date, batch_id: int) -> NightlyRun:
    """Summarise the night from its finished batch (idempotent: same batch, same summary)."""
    batch = await queue.get_batch(db, batch_id)
    if batch.finished_at is None:
        raise queue.InvalidState(f"batch {batch_id} of night {night} has not finished")
    counts = batch.totals
    written = await snapshots.of_batch(db, batch_id)
    partial = min(written.partial, counts.completed)
    failures = dict(sorted(written.source_failures.items(), key=lambda kv: (-kv[1], kv[0])))
    row = await db.pool.fetchrow(
        db.queries.write_nightly_summary, night, batch_id, batch.finished_at,
        counts.completed + counts.failed + counts.cancelled, counts.completed - partial,
        partial, counts.failed, counts.cancelled, orjson.dumps(failures).decode())
    if row is None:
        raise NotFound("nightly run with batch", f"{night.isoformat()}/{batch_id}")
    return NightlyRun.from_record(row)
