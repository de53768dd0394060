"""A worker process killed outright: its jobs run again elsewhere within seconds, not after
the stall timeout, without spending an attempt; a job that kills every worker it touches
fails at its queue's crash limit. Take-back times are printed, not asserted."""

from __future__ import annotations

import signal
import time

import pytest

from shared import queue
from shared.db import Database
from shared.queue import JobSpec
from tests.e2e.processes import Process, Processes
from tests.support import wait_until

pytestmark = pytest.mark.slow

ENV = {
    "MS8_POOL_MIN": "1",
    "MS8_POOL_MAX": "4",
    # The stall timeout is far away: only liveness can bring the jobs back in time.
    "MS8_HEARTBEAT_SECONDS": "5",
    "MS8_STALL_SECONDS": "600",
    "MS8_LEADER_WAIT_SECONDS": "1",
}


def start_worker(processes: Processes, worker_id: str, queues: str, **env: str) -> Process:
    return processes.start("worker", "--queues", queues, "--id", worker_id,
                           "--handlers", "tests.e2e.crashing_handlers", name=worker_id,
                           **{**ENV, **env})


async def jobs_of(db: Database, worker_id: str) -> list[int]:
    rows = await db.pool.fetch(
        "SELECT id FROM ms8jobs.jobs WHERE state = 'active' AND worker_id = $1 ORDER BY id",
        worker_id)
    return [row["id"] for row in rows]


async def test_a_sigkilled_workers_jobs_run_again_elsewhere_without_spending_an_attempt(
    db: Database, processes: Processes,
) -> None:
    await queue.create_queue(db, "sleep", retry_limit=0)
    sent = await queue.send_many(db, [JobSpec.of("sleep", {"seconds": 6}) for _ in range(10)])
    first = start_worker(processes, "first", "sleep=10")
    await wait_until(lambda: _count(jobs_of(db, "first"), 10), timeout=30,
                     message="10 jobs running on the first worker")
    second = start_worker(processes, "second", "sleep=10")
    await second.wait_for_log("worker started")

    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    killed = time.monotonic()
    await wait_until(lambda: _count(jobs_of(db, "second"), 10), timeout=30,
                     message="the 10 jobs running on the second worker")
    took = time.monotonic() - killed
    await wait_until(lambda: _completed(db, 10), timeout=30, message="all 10 completed")
    taken = await second.wait_for_log("took back the jobs of dead workers")
    print(f"\nSIGKILL → all 10 jobs running on the other worker after {took:.2f} s "
          f"(lock missing for {taken['unlocked_seconds']} s when taken back)")

    assert taken["workers"] == ["first"] and taken["jobs"] == 10
    for s in sent:
        job = await queue.get_job(db, s.id)
        # Run twice (the first run killed), yet one attempt, with no retry allowed.
        assert (job.state, job.attempt, job.crash_count, job.output["worker_id"]) == (
            "completed", 1, 1, "second")
    workers = await db.pool.fetch("SELECT id FROM ms8jobs.workers")
    assert [w["id"] for w in workers] == ["second"]  # the dead one forgotten
    assert await second.stop() == 0


async def test_a_poison_job_fails_once_it_has_crashed_its_queues_limit_of_workers(
    db: Database, processes: Processes,
) -> None:
    await queue.create_queue(db, "poison", crash_limit=3, retry_limit=0)
    sent = await queue.send(db, "poison", {"kills": "its worker"})
    deaths = 0
    worker = start_worker(processes, "w0", "poison,echo", MS8_LIVENESS_SECONDS="0.5")
    deadline = time.monotonic() + 120
    while (await queue.get_job(db, sent.id)).state != "failed":
        assert time.monotonic() < deadline, "the poison job never failed"
        if worker.running:
            await wait_until(lambda w=worker: not w.running or _is_failed(db, sent.id),
                             timeout=60, message="the worker to die or the job to fail")
            continue
        assert await worker.wait_exit() == 70  # os._exit in the handler
        deaths += 1
        worker = start_worker(processes, f"w{deaths}", "poison,echo",
                              MS8_LIVENESS_SECONDS="0.5")

    job = await queue.get_job(db, sent.id)
    assert deaths == 3
    assert (job.state, job.attempt, job.crash_count) == ("failed", 1, 3)
    assert job.error_message.startswith("crashed 3 workers, its queue's crash limit")
    assert f"worker w{deaths - 1} died while running it" in job.error_message
    # The survivor goes on working.
    echo = await queue.send(db, "echo", {"after": "the poison"})
    await wait_until(lambda: _is_completed(db, echo.id), timeout=20)
    assert worker.running and await worker.stop() == 0


async def _count(ids: object, n: int) -> bool:
    return len(await ids) == n  # type: ignore[misc]


async def _completed(db: Database, n: int) -> bool:
    return (await queue.count_jobs(db)).get("sleep", {}).get("completed", 0) == n


async def _is_failed(db: Database, job_id: int) -> bool:
    return (await queue.get_job(db, job_id)).state == "failed"


async def _is_completed(db: Database, job_id: int) -> bool:
    return (await queue.get_job(db, job_id)).state == "completed"
