"""Losing the database connections mid-drain: nothing is lost, nothing runs twice."""

from __future__ import annotations

import asyncio

from shared import queue
from shared.db import Database, is_connection_error
from shared.queue import JobSpec
from tests.support import wait_until
from worker.context import JobContext

from .conftest import StartWorker


async def kill_worker_connections(db: Database) -> int:
    """Terminate every ms8-jobs backend of this database but the caller's own."""
    return await db.pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        "   AND application_name LIKE 'ms8-jobs%'")


async def completed(db: Database) -> int:
    try:
        counts = await queue.count_jobs(db)
    except Exception as error:
        if is_connection_error(error):
            return -1
        raise
    return counts.get("work", {}).get("completed", 0)


async def test_killing_every_connection_mid_drain_loses_and_repeats_nothing(
    db: Database, start_worker: StartWorker,
) -> None:
    runs: dict[int, int] = {}

    async def work(ctx: JobContext) -> int:
        runs[ctx.job.id] = runs.get(ctx.job.id, 0) + 1
        await asyncio.sleep(0.002)
        return ctx.job.id

    total = 3000
    await queue.send_many(db, [JobSpec.of("work", {"i": i}, retry_delay=0.0)
                               for i in range(total)])
    runner = await start_worker({"work": work}, MS8_WORKER_QUEUES="work=20")
    for fraction in (0.2, 0.5, 0.8):
        await wait_until(lambda f=fraction: _past(db, int(total * f)), timeout=60)
        assert await kill_worker_connections(db) > 0
    await wait_until(lambda: _past(db, total - 1), timeout=60, message="all completed")
    counts = await queue.count_jobs(db)
    assert counts["work"] == {"completed": total}
    assert runner.listener is not None and runner.listener.reconnects >= 1
    # At least once, and in practice exactly once: no job was reclaimed and run again.
    assert len(runs) == total
    assert sum(runs.values()) == total
    assert runner.executor.running_ids == set() and len(runner.completer) == 0


async def _past(db: Database, n: int) -> bool:
    return await completed(db) > n
