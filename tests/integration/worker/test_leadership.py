"""Maintenance leadership: one leader per schema, immediate takeover, and the leader's
tasks doing their job (stalled jobs of a dead worker come back)."""

from __future__ import annotations

from shared import queue
from shared.db import Database, is_connection_error
from tests.support import leader_locks, wait_until
from worker.maintenance.leader import PassLeadership

from .conftest import StartWorker


async def test_one_leader_and_the_other_takes_over_when_it_stops(
    db: Database, start_worker: StartWorker,
) -> None:
    first = await start_worker(MS8_WORKER_QUEUES="noop")
    await wait_until(lambda: first.leadership.is_leader, message="first worker leads")
    second = await start_worker(MS8_WORKER_QUEUES="noop")
    await wait_until(lambda: _locks_are(db, (1, 1)), message="second worker waits")
    assert not second.leadership.is_leader
    await first.stop(grace=0)
    await wait_until(lambda: second.leadership.is_leader, timeout=5, message="takeover")
    assert await leader_locks(db) == (1, 0)


async def _locks_are(db: Database, expected: tuple[int, int]) -> bool:
    return await leader_locks(db) == expected


async def test_a_leader_whose_connection_dies_steps_down_and_campaigns_again(
    db: Database, start_worker: StartWorker,
) -> None:
    runner = await start_worker(MS8_WORKER_QUEUES="noop")
    await wait_until(lambda: runner.leadership.is_leader)
    await db.pool.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = 'ms8-jobs leader w1'")
    await wait_until(lambda: runner.leadership.terms == 2, timeout=10, message="re-elected")
    assert runner.leadership.is_leader


async def test_the_leader_reclaims_the_jobs_of_a_dead_worker(
    db: Database, start_worker: StartWorker,
) -> None:
    await queue.send_many(db, [queue.JobSpec.of("echo", {"n": i}, retry_delay=0.0)
                               for i in range(5)])
    claimed = await queue.fetch(db, {"echo": 5}, "dead-worker")
    assert len(claimed) == 5
    # The dead worker (registered without a session lock) never heartbeats: after the
    # stall timeout the leader takes the jobs back (a crash, no attempt spent) and the
    # living worker runs them.
    runner = await start_worker(MS8_WORKER_QUEUES="echo", MS8_STALL_SECONDS="0.5",
                                MS8_HEARTBEAT_SECONDS="0.1", MS8_RESCUE_SECONDS="0.1")
    await wait_until(lambda: _all_completed(db, [j.id for j in claimed]), timeout=15)
    for job in claimed:
        done = await queue.get_job(db, job.id)
        assert (done.attempt, done.crash_count, done.output["worker_id"]) == (
            1, 1, runner.worker_id)


async def _all_completed(db: Database, ids: list[int]) -> bool:
    try:
        jobs = [await queue.get_job(db, i) for i in ids]
        return all(job.state == "completed" for job in jobs)
    except Exception as error:
        if is_connection_error(error):
            return False
        raise


async def test_in_poll_only_mode_maintenance_leads_pass_by_pass_through_the_pool(
    db: Database, start_worker: StartWorker,
) -> None:
    await queue.send_many(db, [queue.JobSpec.of("echo", retry_delay=0.0) for _ in range(3)])
    claimed = await queue.fetch(db, {"echo": 3}, "dead-worker")
    runner = await start_worker(MS8_WORKER_QUEUES="echo", MS8_POLL_ONLY="true",
                                MS8_POLL_SECONDS="0.2", MS8_STALL_SECONDS="0.5",
                                MS8_HEARTBEAT_SECONDS="0.1", MS8_RESCUE_SECONDS="0.1")
    assert isinstance(runner.leadership, PassLeadership)
    await wait_until(lambda: _all_completed(db, [j.id for j in claimed]), timeout=15)
    assert runner.leadership.is_leader
    # A session leader elsewhere (same lock) takes the passes away from it.
    async with db.pool.acquire() as conn:
        await conn.fetchval(
            "SELECT pg_advisory_lock(hashtextextended('ms8-jobs leader ms8jobs', 0))")
        try:
            await wait_until(lambda: not runner.leadership.is_leader, timeout=10)
        finally:
            await conn.fetchval(
                "SELECT pg_advisory_unlock(hashtextextended('ms8-jobs leader ms8jobs', 0))")
    await wait_until(lambda: runner.leadership.is_leader, timeout=10)
