"""The worker as real processes: killed, stopped, cut off from the database, crowded.

Each test starts ``python -m worker`` subprocesses against a database of its own, with
short intervals (heartbeat 0.2 s, stall 1.5 s), and checks what the issue promises:
nothing lost, nothing completed twice, one maintenance leader, fleet caps held.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from devstack.embedded import EmbeddedPostgres
from shared import queue
from shared.db import Database, is_connection_error, open_database
from shared.queue import JobSpec
from tests import conftest as base
from tests.e2e.conftest import start_migrated
from tests.e2e.gate import gate
from tests.e2e.processes import Process, Processes
from tests.support import leader_locks, wait_until

pytestmark = pytest.mark.slow

FAST = {
    "MS8_POOL_MIN": "1",
    "MS8_POOL_MAX": "4",
    "MS8_HEARTBEAT_SECONDS": "0.2",
    "MS8_STALL_SECONDS": "1.5",
    "MS8_RESCUE_SECONDS": "0.2",
    "MS8_LISTEN_CHECK_SECONDS": "1",
    "MS8_LEADER_WAIT_SECONDS": "1",
    "MS8_WORKER_DB_TIMEOUT_SECONDS": "5",
}


def start_worker(processes: Processes, worker_id: str, queues: str, **env: str) -> Process:
    return processes.start("worker", "--queues", queues, "--id", worker_id, name=worker_id,
                           **{**FAST, **env})


async def held_by(db: Database, worker_id: str) -> int:
    return await db.pool.fetchval(
        "SELECT count(*) FROM ms8jobs.jobs WHERE state = 'active' AND worker_id = $1", worker_id)


async def count(db: Database, queue_name: str, state: str) -> int:
    try:
        counts = await queue.count_jobs(db)
    except Exception as error:
        if is_connection_error(error):
            return -1
        raise
    return counts.get(queue_name, {}).get(state, 0)


async def test_sigkill_with_20_long_jobs_held_a_second_worker_completes_them_all_once(
    db: Database, processes: Processes,
) -> None:
    await queue.create_queue(db, "sleep", retry_delay_seconds=0.0)
    sent = await queue.send_many(db, [JobSpec.of("sleep", {"seconds": 6}) for _ in range(20)])
    first = start_worker(processes, "first", "sleep=20")
    await first.wait_for_log("worker started")
    await wait_until(lambda: _held(db, "first", 20), timeout=20, message="20 jobs held")
    second = start_worker(processes, "second", "sleep=20")
    await second.wait_for_log("worker started")

    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL

    await wait_until(lambda: _count_is(db, "sleep", "completed", 20), timeout=60,
                     message="all 20 completed by the second worker")
    for s in sent:
        job = await queue.get_job(db, s.id)
        assert job.state == "completed"
        # Run once by the first worker (killed mid-run), once by the second: the crash
        # spent no attempt, and only the second run reported a result.
        assert (job.attempt, job.crash_count, job.worker_id, job.output["worker_id"]) == (
            1, 1, "second", "second")
    assert await queue.count_jobs(db) == {"sleep": {"completed": 20}}
    assert second.saw("maintenance leadership acquired")
    assert await second.stop() == 0


async def _held(db: Database, worker_id: str, n: int) -> bool:
    return await held_by(db, worker_id) == n


async def _count_is(db: Database, queue_name: str, state: str, expected: int) -> bool:
    return await count(db, queue_name, state) == expected


async def test_sigterm_hands_running_jobs_back_and_they_finish_elsewhere(
    db: Database, processes: Processes,
) -> None:
    sent = await queue.send_many(db, [JobSpec.of("sleep", {"seconds": 3}) for _ in range(5)])
    quick = await queue.send(db, "echo", {"quick": True})
    first = start_worker(processes, "first", "sleep=5,echo", MS8_WORKER_GRACE_SECONDS="0.5")
    await wait_until(lambda: _held(db, "first", 5), timeout=20)
    await wait_until(lambda: _count_is(db, "echo", "completed", 1))

    assert await first.stop(signal.SIGTERM) == 0
    assert first.saw("jobs handed back", count=5)
    for s in sent:
        job = await queue.get_job(db, s.id)
        assert (job.state, job.attempt, job.worker_id) == ("created", 0, None)
    workers = await db.pool.fetch("SELECT id FROM ms8jobs.workers")
    assert [w["id"] for w in workers] == []  # deregistered

    second = start_worker(processes, "second", "sleep=5")
    await wait_until(lambda: _count_is(db, "sleep", "completed", 5), timeout=30)
    for s in sent:
        job = await queue.get_job(db, s.id)
        assert (job.attempt, job.output["worker_id"]) == (1, "second")  # no attempt lost
    assert (await queue.get_job(db, quick.id)).output["worker_id"] == "first"
    assert await second.stop() == 0


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
async def test_a_second_signal_cuts_the_grace_period_short(
    db: Database, processes: Processes, second: signal.Signals,
) -> None:
    sent = await queue.send(db, "sleep", {"seconds": 120})
    worker = start_worker(processes, "patient", "sleep", MS8_WORKER_GRACE_SECONDS="300")
    await wait_until(lambda: _held(db, "patient", 1), timeout=20)
    worker.send_signal(signal.SIGTERM)
    await worker.wait_for_log("worker stopping", timeout=10)
    assert worker.running  # waiting out a grace of five minutes for a two-minute job
    worker.send_signal(second)
    # Within the wait (far below the grace and the job): ended, job handed back.
    assert await worker.wait_exit(timeout=20) == 0, worker.tail()
    assert worker.saw("second signal: ending the grace period now")
    job = await queue.get_job(db, sent.id)
    assert (job.state, job.attempt, job.worker_id) == ("created", 0, None)


async def test_two_workers_one_runs_maintenance_and_the_other_takes_over_when_killed(
    db: Database, processes: Processes,
) -> None:
    workers = [start_worker(processes, name, "echo") for name in ("a", "b")]
    for w in workers:
        await w.wait_for_log("worker started")
    await wait_until(lambda: _locks(db, (1, 1)), timeout=20,
                     message="one leader holding the lock, one waiting for it")
    leaders = [w for w in workers if w.saw("maintenance leadership acquired")]
    assert len(leaders) == 1
    [leader] = leaders
    [other] = [w for w in workers if w is not leader]

    assert await leader.stop(signal.SIGKILL) == -signal.SIGKILL
    await other.wait_for_log("maintenance leadership acquired", timeout=10)
    assert await leader_locks(db) == (1, 0)

    # The new leader does the work: a job claimed by a worker that died is reclaimed. It
    # is on a queue no live worker serves, so the ghost always gets it and only
    # maintenance can give it back.
    sent = await queue.send(db, "orphan", retry_delay=0.0)
    [ghost] = await queue.fetch(db, {"orphan": 1}, "ghost")
    assert ghost.id == sent.id
    await other.wait_for_log("reclaimed jobs", timeout=20)
    job = await queue.get_job(db, sent.id)
    assert job.state in ("created", "retry") and job.worker_id is None, job
    assert not leader.saw("reclaimed jobs")
    # And the survivor still runs what it serves.
    done = await queue.send(db, "echo")
    await wait_until(lambda: _count_is(db, "echo", "completed", 1), timeout=20)
    assert (await queue.get_job(db, done.id)).output["worker_id"] == other.name
    assert await other.stop() == 0


async def _locks(db: Database, expected: tuple[int, int]) -> bool:
    return await leader_locks(db) == expected


async def kill_worker_backends(db: Database) -> int:
    """pg_terminate_backend on every connection of the worker processes."""
    return await db.pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name LIKE 'ms8-jobs%'"
        "   AND application_name <> 'ms8-jobs test'")


async def test_terminating_every_worker_connection_mid_drain_loses_no_job(
    db: Database, processes: Processes,
) -> None:
    total = 4000
    await queue.create_queue(db, "sleep", retry_delay_seconds=0.0)
    workers = [start_worker(processes, name, "sleep=10") for name in ("a", "b")]
    for w in workers:
        await w.wait_for_log("worker started")
    await queue.send_many(db, [JobSpec.of("sleep", {"seconds": 0.01}) for _ in range(total)])
    for fraction in (0.25, 0.5, 0.75):
        await wait_until(lambda f=fraction: _past(db, int(total * f)), timeout=60)
        assert await kill_worker_backends(db) > 0
    await wait_until(lambda: _count_is(db, "sleep", "completed", total), timeout=90,
                     message=f"all {total} completed")
    assert await queue.count_jobs(db) == {"sleep": {"completed": total}}
    for w in workers:
        assert w.running, w.tail()
        assert w.saw("listening again; fetching to catch up")
    for w in workers:
        assert await w.stop() == 0


async def _past(db: Database, n: int) -> bool:
    return await count(db, "sleep", "completed") > n


async def test_ten_workers_on_a_queue_capped_at_five_never_hold_more_than_five(
    db: Database, processes: Processes,
) -> None:
    total = 120
    await db.pool.execute("CREATE TABLE fleet_probe (running int NOT NULL, peak int NOT NULL);"
                          "INSERT INTO fleet_probe VALUES (0, 0)")
    await queue.create_queue(db, "counted", fleet_limit=5)
    workers = [start_worker(processes, f"w{i}", "counted=3", MS8_POOL_MAX="2",
                            MS8_WORKER_HANDLER_MODULES="tests.e2e.counting_handlers")
               for i in range(10)]
    for w in workers:
        await w.wait_for_log("worker started", timeout=60)
    await queue.send_many(db, [JobSpec.of("counted", {"seconds": 0.05}) for _ in range(total)])
    await wait_until(lambda: _count_is(db, "counted", "completed", total), timeout=120,
                     message=f"all {total} completed")
    running, peak = await db.pool.fetchrow("SELECT running, peak FROM fleet_probe")
    # Ten workers of three slots would run up to 30 at once without the cap.
    assert (running, peak) == (0, 5), f"{peak} runs at once with a fleet limit of 5"
    ran_on = await db.pool.fetchval(
        "SELECT count(DISTINCT worker_id) FROM ms8jobs.history WHERE queue = 'counted'")
    assert ran_on > 1
    await asyncio.gather(*(w.stop() for w in workers))
    assert [w.returncode for w in workers] == [0] * 10


async def test_bad_settings_exit_with_status_2_naming_the_flag(processes: Processes) -> None:
    proc = processes.start("worker", "--queues", "sleep=lots", name="bad")
    assert await proc.wait_exit() == 2
    assert any("MS8_WORKER_QUEUES (--queues)" in line and "'lots'" in line
               for line in proc.lines), proc.tail()


async def test_a_postgres_restart_and_crash_mid_drain_lose_no_job(
    own_cluster: EmbeddedPostgres, processes: Processes,
) -> None:
    url = await start_migrated(own_cluster)
    total = 3000
    db = await open_database(base.test_settings(url), "test")
    try:
        await queue.create_queue(db, "sleep", retry_delay_seconds=0.0)
        worker = start_worker(processes, "survivor", "sleep=20", DATABASE_URL=url,
                              MS8_STALL_SECONDS="10")
        await worker.wait_for_log("worker started")
        await queue.send_many(db, [JobSpec.of("sleep", {"seconds": 0.005})
                                   for _ in range(total)])
        await wait_until(lambda: _past_in(db, total // 3), timeout=60)
        await asyncio.to_thread(own_cluster.restart)
        await wait_until(lambda: _past_in(db, 2 * total // 3), timeout=60,
                         message="draining again after the restart")
        await asyncio.to_thread(own_cluster.kill)
        await asyncio.to_thread(own_cluster.start)
        await wait_until(lambda: _count_is(db, "sleep", "completed", total), timeout=90,
                         message="every job completed after the crash")
        assert worker.running and worker.saw("listening again; fetching to catch up")
        assert await queue.count_jobs(db) == {"sleep": {"completed": total}}
        assert await worker.stop() == 0
    finally:
        await db.close()


async def _past_in(db: Database, n: int) -> bool:
    return await count(db, "sleep", "completed") > n


async def test_sigterm_while_postgres_is_down_gives_up_within_its_budget(
    own_cluster: EmbeddedPostgres, processes: Processes,
) -> None:
    url = await start_migrated(own_cluster)
    db = await open_database(base.test_settings(url), "test")
    try:
        sent = await queue.send(db, "sleep", {"seconds": 3600}, retry_delay=0.0)
        worker = start_worker(processes, "stranded", "sleep", DATABASE_URL=url,
                              MS8_WORKER_GRACE_SECONDS="0.2",
                              MS8_WORKER_DB_TIMEOUT_SECONDS="2")
        await wait_until(lambda: _held(db, "stranded", 1), timeout=20)
        await db.close()
        await asyncio.to_thread(own_cluster.stop)

        # It cannot hand the job back: it says so and exits 1 instead of hanging.
        assert await worker.stop(signal.SIGTERM, timeout=20) == 1
        assert worker.saw("could not hand jobs back; maintenance will reclaim them")

        await asyncio.to_thread(own_cluster.start)
        db = await open_database(base.test_settings(url), "test")
        rescuer = start_worker(processes, "rescuer", "sleep", DATABASE_URL=url,
                               MS8_WORKER_GRACE_SECONDS="0.2")
        await wait_until(lambda: _is_state(db, sent.id, "active", "rescuer"), timeout=30,
                         message="the stranded job reclaimed and running elsewhere")
        job = await queue.get_job(db, sent.id)
        assert (job.attempt, job.crash_count) == (1, 1)  # a crash, not an attempt
        assert await rescuer.stop() == 0
    finally:
        await db.close()


async def test_results_held_through_an_outage_are_saved_at_sigterm_once_postgres_is_back(
    own_cluster: EmbeddedPostgres, processes: Processes,
) -> None:
    """Three jobs end while PostgreSQL is down (their results wait in the worker), a
    fourth still runs; SIGTERM, then PostgreSQL starts again within the grace: the three
    results are saved (completed at attempt 1), the fourth is handed back without an
    attempt counted, and the worker exits 0, its stop clean."""
    url = await start_migrated(own_cluster)
    db = await open_database(base.test_settings(url), "test")
    try:
        async with gate() as held:
            ended = [await queue.send(db, "gated", {"gate_port": held.port}) for _ in range(3)]
            running = await queue.send(db, "sleep", {"seconds": 3600})
            worker = start_worker(processes, "patient", "gated=3,sleep=1", DATABASE_URL=url,
                                  MS8_WORKER_HANDLER_MODULES="tests.e2e.gated_handlers",
                                  MS8_WORKER_GRACE_SECONDS="5",
                                  MS8_WORKER_DB_TIMEOUT_SECONDS="60", MS8_MAINTENANCE="false")
            await wait_until(lambda: len(held.waiting) == 3, timeout=30,
                             message="three gated runs waiting")
            await wait_until(lambda: _held(db, "patient", 4), timeout=30, message="4 jobs held")
            await db.close()
            await asyncio.to_thread(own_cluster.stop)
            held.open()
            await worker.wait_for(lambda: len(worker.find("gate passed")) == 3, timeout=30,
                                  what="three runs ended while the database was down")
        assert not worker.saw("job completed")  # their results are held, not saved

        worker.send_signal(signal.SIGTERM)
        await worker.wait_for_log("worker stopping")
        await asyncio.to_thread(own_cluster.start)
        assert await worker.wait_exit(timeout=90) == 0, worker.tail()
        assert worker.saw("worker stopped", clean=True)
        assert len(worker.find("job completed")) == 3

        db = await open_database(base.test_settings(url), "test")
        for sent in ended:
            job = await queue.get_job(db, sent.id)
            assert (job.state, job.attempt, job.output) == ("completed", 1, {"passed": True})
        job = await queue.get_job(db, running.id)
        assert (job.state, job.attempt, job.crash_count, job.worker_id) == (
            "created", 0, 0, None)
    finally:
        await db.close()


async def _is_state(db: Database, job_id: int, state: str, worker_id: str) -> bool:
    job = await queue.get_job(db, job_id)
    return (job.state, job.worker_id) == (state, worker_id)


async def test_a_worker_started_while_postgres_is_down_waits_then_works(
    own_cluster: EmbeddedPostgres, processes: Processes,
) -> None:
    url = await start_migrated(own_cluster)
    await asyncio.to_thread(own_cluster.stop)
    worker = start_worker(processes, "early", "echo", DATABASE_URL=url)
    await worker.wait_for_log("database unreachable", timeout=30)
    assert worker.running and not worker.saw("worker started")
    await asyncio.to_thread(own_cluster.start)
    await worker.wait_for_log("worker started", timeout=30)
    db = await open_database(base.test_settings(url), "test")
    try:
        sent = await queue.send(db, "echo", {"after": "the outage"})
        await wait_until(lambda: _count_is(db, "echo", "completed", 1), timeout=20)
        assert (await queue.get_job(db, sent.id)).output["worker_id"] == "early"
    finally:
        await db.close()
    assert len(worker.find("database unreachable")) == 1  # one line for the wait
    assert await worker.stop() == 0
