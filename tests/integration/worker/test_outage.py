"""Losing the database mid-drain: nothing is lost, nothing runs twice; a handler that
meets the database gone does not spend an attempt."""

from __future__ import annotations

import asyncio

from analytics import snapshots, user_roles
from analytics.fanout import COLLECT_QUEUE
from shared import queue
from shared.db import Database, is_connection_error, open_database
from shared.queue import JobSpec
from tests import conftest as base
from tests.e2e.conftest import cluster_of_its_own, start_migrated
from tests.integration.analytics.sources import FakeSources
from tests.support import wait_until
from worker.context import JobContext

from .conftest import CollectFrom, StartWorker


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


async def test_a_collection_whose_snapshot_write_meets_the_database_gone_spends_no_attempt(
    start_worker: StartWorker, sources: FakeSources, collect_from: CollectFrom,
) -> None:
    """PostgreSQL (a cluster of the test's own) is stopped while collect-analytics waits
    on its sources; they answer, the snapshot write fails on the closed database. Once
    the server is back the job is given back (a crash counted, not an attempt), runs
    again and completes at attempt 1."""
    collect_from(MS8_SOURCE_RETRY_DELAY="0", MS8_SOURCE_TIMEOUT="60")
    sources.modes.update(dict.fromkeys("abc", "gated"))
    with cluster_of_its_own() as cluster:
        url = await start_migrated(cluster)
        own = await open_database(base.test_settings(url, MS8_POOL_MIN="1"), "test")
        try:
            await user_roles.seed(own, 1)
            sent = await queue.send(own, COLLECT_QUEUE, {"user_role_id": 1, "day": "2026-03-01"},
                                    retry_limit=2, retry_delay=0.05, retry_backoff=False)
            runner = await start_worker(database=own, MS8_MAINTENANCE="false",
                                        MS8_WORKER_QUEUES=f"{COLLECT_QUEUE}=5")
            await wait_until(lambda: sources.in_flight["a"] == 1, timeout=30,
                             message="the collection waiting on its sources")
            await asyncio.to_thread(cluster.stop)
            sources.gate.set()
            await wait_until(lambda: runner.completer.pending_ids == {sent.id}, timeout=30,
                             message="the interrupted run waiting to be reported")
            assert runner.executor.running_ids == set()
            await asyncio.to_thread(cluster.start)

            job = await wait_until(lambda: _finished(own, sent.id), timeout=60,
                                   message="the collection ended after the outage")
            assert (job.state, job.attempt, job.crash_count) == ("completed", 1, 1), job
            assert job.output["status"] == "complete"
            assert sources.requests["a"] == 2  # the interrupted run, and the one that wrote
            snapshot = await snapshots.latest(own, 1)
            assert (snapshot.status, snapshot.job_id) == ("complete", sent.id)
            await runner.stop(grace=0)
        finally:
            await own.close()


async def _finished(db: Database, job_id: int) -> queue.Job | None:
    try:
        job = await queue.get_job(db, job_id)
    except Exception as error:
        if is_connection_error(error):
            return None
        raise
    return job if job.finished else None
