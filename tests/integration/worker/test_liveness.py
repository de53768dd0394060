"""Liveness: each worker holds a session lock while it lives; the leader hands back at once
the jobs of a registered worker whose lock is gone, and only after a few checks in a row."""

from __future__ import annotations

from shared import queue
from shared.db import Database
from shared.queue import JobSpec
from tests.support import wait_until

from .conftest import StartWorker


async def holds_lock(db: Database, worker_id: str) -> bool:
    return await db.pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND (classid::bigint << 32) | objid::bigint = ms8jobs.worker_lock_key($1))",
        worker_id)


async def registered(db: Database) -> dict[str, bool]:
    rows = await db.pool.fetch("SELECT id, session_lock FROM ms8jobs.workers")
    return {row["id"]: row["session_lock"] for row in rows}


async def register_dead_worker(db: Database, worker_id: str) -> None:
    """A registry row of a worker that held a session lock and died (it holds none now)."""
    await db.pool.execute(
        "INSERT INTO ms8jobs.workers (id, host, pid, concurrency, session_lock, started_at)"
        " VALUES ($1, 'gone', 1, 5, true, now() - interval '1 hour')", worker_id)


async def test_a_worker_holds_its_session_lock_while_it_lives_and_says_so(
    db: Database, start_worker: StartWorker,
) -> None:
    runner = await start_worker(MS8_WORKER_QUEUES="echo", MS8_MAINTENANCE="false")
    await wait_until(lambda: holds_lock(db, "w1"), message="lock held")
    polling = await start_worker(MS8_WORKER_QUEUES="echo", MS8_MAINTENANCE="false",
                                 MS8_POLL_ONLY="true")
    assert polling.session_lock is None
    assert await registered(db) == {"w1": True, "w2": False}
    await runner.stop(grace=0)
    assert not await holds_lock(db, "w1")
    assert await registered(db) == {"w2": False}


async def test_the_leader_hands_back_a_dead_workers_jobs_at_once_and_forgets_it(
    db: Database, start_worker: StartWorker,
) -> None:
    await queue.send_many(db, [JobSpec.of("echo", {"n": i}, retry_limit=0, retry_delay=60.0)
                               for i in range(3)])
    await register_dead_worker(db, "dead")
    claimed = await queue.fetch(db, {"echo": 3}, "dead")
    # A stall timeout of an hour: only liveness can bring these jobs back in time.
    runner = await start_worker(MS8_WORKER_QUEUES="echo", MS8_LIVENESS_SECONDS="0.1",
                                MS8_STALL_SECONDS="3600", MS8_RESCUE_SECONDS="3600")
    await wait_until(lambda: _all_completed(db, [j.id for j in claimed]), timeout=15,
                     message="the dead worker's jobs completed by the living one")
    for job in claimed:
        done = await queue.get_job(db, job.id)
        assert (done.attempt, done.crash_count, done.output["worker_id"]) == (
            1, 1, runner.worker_id)
    assert await registered(db) == {runner.worker_id: True}


async def test_a_live_worker_whose_lock_connection_drops_keeps_its_jobs(
    db: Database, start_worker: StartWorker,
) -> None:
    leader = await start_worker(MS8_WORKER_QUEUES="noop", MS8_LIVENESS_SECONDS="0.2")
    await wait_until(lambda: leader.leadership.is_leader)
    runner = await start_worker(MS8_WORKER_QUEUES="sleep", MS8_MAINTENANCE="false")
    sent = await queue.send(db, "sleep", {"seconds": 3600})
    await wait_until(lambda: sent.id in runner.executor.running_ids)
    await wait_until(lambda: holds_lock(db, runner.worker_id))
    passes = leader.maintenance.passes["liveness"]
    for _ in range(3):  # each time back before the leader's checks in a row are done
        killed = await db.pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = $1",
            f"ms8-jobs worker {runner.worker_id}")
        assert killed == 1
        sessions = runner.session_lock.sessions
        await wait_until(lambda s=sessions: runner.session_lock.sessions > s, timeout=10,
                         message="lock taken again")
    await wait_until(lambda: leader.maintenance.passes["liveness"] > passes + 5, timeout=10)
    job = await queue.get_job(db, sent.id)
    assert (job.state, job.worker_id, job.crash_count) == ("active", runner.worker_id, 0)
    assert sent.id in runner.executor.running_ids


async def _all_completed(db: Database, ids: list[int]) -> bool:
    return all([(await queue.get_job(db, i)).state == "completed" for i in ids])


async def test_an_idle_fleet_check_rests_until_a_job_can_start(db: Database) -> None:
    """With nothing active and nothing due, the check rests (up to rest_max, or until the
    next waiting job is due); anything that may start a job ends the rest."""
    from datetime import UTC, datetime, timedelta

    from worker.maintenance.liveness import Liveness

    check = Liveness(db, 0.1, rest_max=3600.0)
    async with db.pool.acquire() as conn:
        await check.run(conn)
        assert check.rest() > 3500  # an empty fleet: nothing to look after
        later = await queue.send(db, "echo", {}, start_after=datetime.now(UTC)
                                 + timedelta(seconds=30))
        await check.run(conn)
        assert 20 < check.rest() <= 30  # until that job is due
        await queue.pause_queue(db, "echo")
        await queue.send(db, "echo", {})
        await check.run(conn)
        assert check.rest() > 3500  # no job of a paused queue can start
        await queue.resume_queue(db, "echo")
        await check.run(conn)
        assert check.rest() == 0.1  # a due job: it may start any moment
        claimed = await queue.fetch(db, {"echo": 5}, "w-busy")
        assert later.id not in {job.id for job in claimed} and claimed
        await check.run(conn)
        assert check.rest() == 0.1  # a job is active
        await queue.complete_many(db, [(job.id, None) for job in claimed], worker_id="w-busy")
        await check.run(conn)
        assert check.rest() > 20
        assert check.nudged() and check.rest() == 0.1  # a send or a resume was announced
        assert not check.nudged()


async def test_a_nudge_during_a_check_forbids_the_rest_it_found(db: Database) -> None:
    from worker.maintenance.liveness import Liveness

    check = Liveness(db, 0.1, rest_max=3600.0)

    class NudgedMidway:
        """A connection on which a notification arrives while the check runs."""

        def __init__(self, conn: object) -> None:
            self.conn = conn

        async def fetchrow(self, *args: object) -> object:
            row = await self.conn.fetchrow(*args)  # type: ignore[attr-defined]
            check.nudged()
            return row

    async with db.pool.acquire() as conn:
        await check.run(NudgedMidway(conn))  # type: ignore[arg-type]
        assert check.rest() == 0.1
        await check.run(conn)
        assert check.rest() > 3500


async def test_a_resting_leader_still_takes_back_a_dead_workers_new_jobs_at_once(
    db: Database, start_worker: StartWorker,
) -> None:
    """The leader rests while the fleet is idle; the send of jobs wakes it, so a worker
    that claims them and dies has them taken back within seconds, not at the rest's end."""
    leader = await start_worker(MS8_WORKER_QUEUES="noop", MS8_LIVENESS_SECONDS="0.1",
                                MS8_LIVENESS_REST_SECONDS="3600", MS8_STALL_SECONDS="3600",
                                MS8_RESCUE_SECONDS="3600")
    await wait_until(lambda: leader.maintenance.passes["liveness"] >= 1)
    rested = leader.maintenance.passes["liveness"]
    await register_dead_worker(db, "dead")
    await queue.send_many(db, [JobSpec.of("echo", {"n": i}) for i in range(3)])
    claimed = await queue.fetch(db, {"echo": 3}, "dead")
    assert len(claimed) == 3

    async def taken_back() -> bool:
        jobs = [await queue.get_job(db, job.id) for job in claimed]
        return all(job.state == "created" and job.crash_count == 1 for job in jobs)

    await wait_until(taken_back, timeout=15, message="the dead worker's jobs handed back")
    assert leader.maintenance.passes["liveness"] > rested
