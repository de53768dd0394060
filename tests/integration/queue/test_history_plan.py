"""Fetch costs the same with a million finished jobs kept in history as with none.

Compared by the buffers the fetch touches (EXPLAIN ANALYZE BUFFERS), not by time."""

from __future__ import annotations

import re

from shared import queue
from shared.db import Database
from shared.queue import JobSpec


async def fetch_buffers(db: Database) -> int:
    """Shared buffers the fetch of ten jobs touches; rolled back so every run claims the same."""
    async with db.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            plan = "\n".join(r[0] for r in await conn.fetch(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) "
                f"SELECT * FROM \"{db.schema}\".fetch_jobs(ARRAY['plan'], ARRAY[10], 'w')"))
        finally:
            await transaction.rollback()
    hit, read = re.search(r"Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?", plan).groups()
    return int(hit or 0) + int(read or 0)


async def test_fetch_touches_the_same_pages_with_a_million_finished_jobs(db: Database) -> None:
    await queue.send_many(db, [JobSpec.of("plan", {"i": i}) for i in range(1000)])
    await db.pool.execute(f'ANALYZE "{db.schema}".jobs')
    empty = [await fetch_buffers(db) for _ in range(3)]

    await db.pool.execute(f"""
        INSERT INTO "{db.schema}".history (
            id, queue, state, data, retry_limit, retry_delay_seconds, retry_backoff,
            retry_delay_max_seconds, completed_at, worker_id, attempt)
        SELECT 10000000 + g, CASE WHEN g % 2 = 0 THEN 'plan' ELSE 'other' END, 'completed',
               '{{}}', 2, 60, true, 3600, now(), 'w', 1
        FROM generate_series(1, 1000000) g""")
    await db.pool.execute(f'ANALYZE "{db.schema}".history')
    full = [await fetch_buffers(db) for _ in range(3)]
    print("fetch buffers, empty history vs 1M finished:", empty, full)

    assert min(empty) > 0
    assert min(full) <= min(empty) * 1.1 + 2, (empty, full)
