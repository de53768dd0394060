"""A handler extending its own deadline: the worker's timer and maintenance both wait for
the extended deadline, and act once it has passed."""

from __future__ import annotations

import asyncio

from shared import queue
from shared.db import Database
from tests.support import wait_until
from worker.context import JobContext
from worker.runner import Runner

from .conftest import StartWorker


def outcomes(runner: Runner, outcome: str) -> float:
    value = runner.metrics.registry.get_sample_value(
        "ms8_worker_jobs_finished_total", {"queue": "long", "outcome": outcome})
    return value or 0.0


async def ran_longer_than(db: Database, job_id: int, seconds: float) -> bool:
    return bool(await db.pool.fetchval(
        "SELECT now() > started_at + make_interval(secs => $2) FROM ms8jobs.jobs"
        " WHERE id = $1", job_id, seconds))


async def test_an_extended_job_is_neither_cancelled_nor_reclaimed_past_its_run_timeout(
    db: Database, start_worker: StartWorker,
) -> None:
    extended, finish = asyncio.Event(), asyncio.Event()

    async def long(ctx: JobContext) -> dict[str, int]:
        await ctx.extend_deadline(60)
        extended.set()
        await finish.wait()
        return {"attempt": ctx.attempt}

    # Run timeout 0.3 s, and maintenance (this worker leads) reclaims 0.5 s after it.
    runner = await start_worker({"long": long}, MS8_WORKER_QUEUES="long",
                                MS8_TIMEOUT_GRACE_SECONDS="0.5", MS8_RESCUE_SECONDS="0.1")
    await wait_until(lambda: runner.leadership and runner.leadership.is_leader)
    sent = await queue.send(db, "long", run_timeout=0.3, retry_limit=0)
    await wait_until(extended.is_set, message="deadline extended")
    await wait_until(lambda: ran_longer_than(db, sent.id, 0.3 + 0.5),
                     message="past the run timeout and the reclaim grace")
    passes = runner.maintenance.passes["rescuer"]
    await wait_until(lambda: runner.maintenance.passes["rescuer"] >= passes + 2,
                     message="two reclaim passes after that")
    assert (await queue.get_job(db, sent.id)).state == "active"
    finish.set()
    await wait_until(lambda: _finished(db, sent.id))
    job = await queue.get_job(db, sent.id)
    assert (job.state, job.output) == ("completed", {"attempt": 1})
    assert outcomes(runner, "timeout") == outcomes(runner, "lost") == 0


async def test_an_extended_job_still_times_out_once_the_new_deadline_passes(
    db: Database, start_worker: StartWorker,
) -> None:
    async def stuck(ctx: JobContext) -> None:
        await ctx.extend_deadline(1.0)
        await asyncio.sleep(3600)

    runner = await start_worker({"long": stuck}, MS8_WORKER_QUEUES="long",
                                MS8_TIMEOUT_GRACE_SECONDS="3600")
    sent = await queue.send(db, "long", run_timeout=0.2, retry_limit=0)
    await wait_until(lambda: _finished(db, sent.id))
    job = await queue.get_job(db, sent.id)
    assert (job.state, job.error_message) == ("failed", "timeout")
    assert job.run_timeout_seconds is not None and job.run_timeout_seconds >= 1.0
    timeout = float(job.error_traceback.split("run timeout of ")[1].split(" s")[0])
    assert timeout >= 1.0
    assert outcomes(runner, "timeout") == 1


async def test_an_extension_past_the_worker_s_limit_fails_the_job_saying_so(
    db: Database, start_worker: StartWorker,
) -> None:
    async def greedy(ctx: JobContext) -> None:
        await ctx.extend_deadline(120)

    await start_worker({"long": greedy}, MS8_WORKER_QUEUES="long", MS8_MAX_RUN_SECONDS="60")
    sent = await queue.send(db, "long", run_timeout=10.0, retry_limit=0)
    await wait_until(lambda: _finished(db, sent.id))
    job = await queue.get_job(db, sent.id)
    assert job.state == "failed"
    assert job.error_message.startswith("InvalidInput: seconds: 120 s more")
    assert "past 60 s from its start" in job.error_message


async def _finished(db: Database, job_id: int) -> bool:
    return (await queue.get_job(db, job_id)).finished
