"""The nightly fan-out: one job per active user-role and night, however often it runs."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime

import orjson
import pytest

from analytics import fanout, runs, snapshots, user_roles
from analytics.models import Missing
from shared import queue
from shared.db import Database

NIGHT = date(2026, 3, 1)


async def sent_user_roles(db: Database) -> Counter[tuple[str, int]]:
    """(day, user-role) of every collect-analytics job, with how many jobs each has."""
    rows = await db.pool.fetch(
        f"SELECT data FROM \"{db.schema}\".jobs WHERE queue = 'collect-analytics'")
    return Counter((d["day"], d["user_role_id"]) for d in (orjson.loads(r["data"]) for r in rows))


async def test_one_job_per_active_user_role_under_one_batch(db: Database) -> None:
    await user_roles.seed(db, 2500)
    await db.pool.execute(
        f'UPDATE "{db.schema}_analytics".user_roles SET active = false WHERE id % 10 = 0')
    progress: list[tuple[int, int]] = []

    async def on_progress(done: int, total: int) -> None:
        progress.append((done, total))

    result = await fanout.fan_out(db, NIGHT, chunk=1000, fire_time=datetime(2026, 3, 1, 2,
                                  tzinfo=UTC), job_id=77, on_progress=on_progress)
    assert (result.sent_now, result.sent, result.already_done) == (2250, 2250, False)
    assert progress == [(1000, 2250), (2000, 2250), (2250, 2250)]
    sent = await sent_user_roles(db)
    assert sent == Counter({("2026-03-01", i): 1 for i in range(1, 2501) if i % 10})
    batch = await queue.get_batch(db, result.batch_id)
    assert (batch.total, batch.sealed, batch.on_complete_queue) == (
        2250, True, "daily-batch-done")
    assert batch.on_complete_data == {"night": "2026-03-01"}
    run = await runs.get(db, NIGHT)
    assert (run.batch_id, run.job_id, run.sent, run.last_user_role_id, run.state) == (
        result.batch_id, 77, 2250, 2499, "running")
    policy = await queue.get_queue(db, fanout.COLLECT_QUEUE)
    assert (policy.retry_limit, policy.retry_delay_seconds, policy.retry_backoff) == (2, 60, True)


async def test_a_second_run_for_the_night_does_nothing(db: Database) -> None:
    await user_roles.seed(db, 30)
    first = await fanout.fan_out(db, NIGHT, chunk=7)
    again = await fanout.fan_out(db, NIGHT, chunk=7)
    assert (again.batch_id, again.sent_now, again.sent, again.already_done) == (
        first.batch_id, 0, 30, True)
    assert sum((await sent_user_roles(db)).values()) == 30
    other = await fanout.fan_out(db, date(2026, 3, 2), chunk=7)  # another night: its own jobs
    assert other.batch_id != first.batch_id and other.sent_now == 30


async def test_a_retry_after_a_crash_mid_fan_out_continues_where_it_stopped(
    db: Database,
) -> None:
    await user_roles.seed(db, 50)

    async def crash_after_two_chunks(done: int, total: int) -> None:
        if done >= 20:
            raise RuntimeError("worker died")

    with pytest.raises(RuntimeError):
        await fanout.fan_out(db, NIGHT, chunk=10, on_progress=crash_after_two_chunks)
    assert (await runs.get(db, NIGHT)).sent == 20
    retried = await fanout.fan_out(db, NIGHT, chunk=10)
    assert (retried.sent_now, retried.sent) == (30, 50)
    assert set((await sent_user_roles(db)).values()) == {1}
    assert len(await sent_user_roles(db)) == 50


async def test_two_runs_of_one_night_at_once_take_turns(db: Database) -> None:
    await user_roles.seed(db, 400)
    a, b = await asyncio.gather(*(fanout.fan_out(db, NIGHT, chunk=25) for _ in range(2)))
    assert a.batch_id == b.batch_id
    assert a.sent_now + b.sent_now == 400
    assert set((await sent_user_roles(db)).values()) == {1}
    assert (await queue.get_batch(db, a.batch_id)).total == 400


async def test_an_empty_night_finishes_its_batch_at_once(db: Database) -> None:
    result = await fanout.fan_out(db, NIGHT, chunk=10)
    batch = await queue.get_batch(db, result.batch_id)
    assert batch.finished_at is not None and batch.completion_job_id is not None
    summary = await runs.write_summary(db, NIGHT, result.batch_id)
    assert (summary.state, summary.total, summary.complete, summary.partial, summary.failed) == (
        "finished", 0, 0, 0, 0)


async def test_the_summary_splits_completed_into_complete_and_partial(db: Database) -> None:
    await user_roles.seed(db, 10)
    result = await fanout.fan_out(db, NIGHT, chunk=100)
    jobs = await queue.fetch(db, {fanout.COLLECT_QUEUE: 10}, "w")
    for job in jobs[:6]:
        uid = job.data["user_role_id"]
        missing = [Missing("assessment", "timeout")] if uid % 2 else []
        await snapshots.write(db, uid, NIGHT, {"a": {}}, missing, 5, job_id=job.id,
                              batch_id=job.batch_id)
    await queue.complete_many(db, [(j.id, None) for j in jobs[:6]])
    with pytest.raises(queue.InvalidState, match="has not finished"):
        await runs.write_summary(db, NIGHT, result.batch_id)
    for job in jobs[6:]:
        await queue.fail(db, job.id, "all sources failed", retry=False)
    summary = await runs.write_summary(db, NIGHT, result.batch_id)
    odd = sum(1 for j in jobs[:6] if j.data["user_role_id"] % 2)
    assert (summary.total, summary.complete, summary.partial, summary.failed,
            summary.cancelled) == (10, 6 - odd, odd, 4, 0)
    assert summary.source_failures == {"assessment": odd}
    assert summary.duration_seconds is not None and summary.duration_seconds >= 0
    assert await runs.write_summary(db, NIGHT, result.batch_id) == summary
