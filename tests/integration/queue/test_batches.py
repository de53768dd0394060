"""Batches: totals that stay right, and one completion job when the last child ends."""

from __future__ import annotations

import asyncio

import pytest

from shared import queue
from shared.db import Database
from shared.queue import JobSpec, NotFound


async def completion_jobs(db: Database, name: str = "batch-done") -> list[queue.Job]:
    return await queue.list_jobs(db, queue=name)


async def test_totals_and_one_completion_job_with_failures_included(db: Database) -> None:
    batch_id, sent = await queue.send_batch(
        db, [JobSpec.of("child", {"i": i}, retry_limit=0) for i in range(10)], "nightly",
        on_complete_queue="batch-done", on_complete_data={"kind": "nightly"})
    assert len(sent) == 10
    batch = await queue.get_batch(db, batch_id)
    assert (batch.total, batch.sealed, batch.finished_at) == (10, True, None)
    assert batch.totals.waiting == 10

    jobs = await queue.fetch(db, {"child": 10}, "w")
    await queue.complete_many(db, [(j.id, None) for j in jobs[:6]])
    await queue.fail(db, jobs[6].id, "down", retry=False)
    batch = await queue.get_batch(db, batch_id)
    assert (batch.totals.completed, batch.totals.failed, batch.totals.active) == (6, 1, 3)
    assert await queue.list_batches(db) == [batch]  # a running batch listed: counted live
    assert await completion_jobs(db) == []

    await queue.cancel(db, [jobs[7].id])
    await queue.complete_many(db, [(j.id, None) for j in jobs[8:]])
    batch = await queue.get_batch(db, batch_id)
    assert batch.finished_at is not None
    assert batch.totals == queue.BatchTotals(completed=8, failed=1, cancelled=1)
    assert await queue.list_batches(db) == [batch]
    [done] = await completion_jobs(db)
    assert done.id == batch.completion_job_id
    assert done.data == {"kind": "nightly", "batch_id": batch_id,
                         "totals": {"completed": 8, "failed": 1, "cancelled": 1}}


async def test_a_batch_filled_page_by_page_finishes_only_when_sealed(db: Database) -> None:
    batch_id = await queue.create_batch(db, "paged", on_complete_queue="batch-done")
    await queue.send_many(db, [JobSpec.of("child") for _ in range(3)], batch_id=batch_id)
    jobs = await queue.fetch(db, {"child": 3}, "w")
    await queue.complete_many(db, [(j.id, None) for j in jobs])
    assert (await queue.get_batch(db, batch_id)).finished_at is None
    await queue.send(db, "child", batch_id=batch_id)
    [last] = await queue.fetch(db, {"child": 1}, "w")
    await queue.complete_many(db, [(last.id, None)])
    await queue.seal_batch(db, batch_id)
    batch = await queue.get_batch(db, batch_id)
    assert (batch.total, batch.totals.completed) == (4, 4)
    assert batch.finished_at is not None
    assert len(await completion_jobs(db)) == 1
    with pytest.raises(NotFound):
        await queue.send(db, "child", batch_id=batch_id)  # sealed: closed to new children


async def test_an_empty_sealed_batch_finishes_at_once(db: Database) -> None:
    batch_id, _ = await queue.send_batch(db, [], "empty", on_complete_queue="batch-done")
    assert (await queue.get_batch(db, batch_id)).finished_at is not None
    assert len(await completion_jobs(db)) == 1


async def test_children_ending_concurrently_enqueue_exactly_one_completion_job(
    db: Database,
) -> None:
    batch_id, _ = await queue.send_batch(
        db, [JobSpec.of("child") for _ in range(400)], on_complete_queue="batch-done")

    async def worker(name: str) -> None:
        while jobs := await queue.fetch(db, {"child": 7}, name):
            await queue.complete_many(db, [(j.id, None) for j in jobs], worker_id=name)

    await asyncio.gather(*(worker(f"w{i}") for i in range(8)))
    assert len(await completion_jobs(db)) == 1
    assert (await queue.get_batch(db, batch_id)).totals.completed == 400


async def test_the_maintenance_check_finishes_a_batch_whose_finisher_died(db: Database) -> None:
    batch_id, sent = await queue.send_batch(db, [JobSpec.of("child")], on_complete_queue="bd")
    [job] = await queue.fetch(db, {"child": 1}, "w")
    # End the child without the follow-up check, as a process dying after its commit would.
    await db.pool.fetch(db.queries.complete_jobs, [job.id], [None], None)
    assert (await queue.get_batch(db, batch_id)).finished_at is None
    assert await queue.finish_pending_batches(db) == [batch_id]
    assert len(await completion_jobs(db, "bd")) == 1
    assert await queue.finish_pending_batches(db) == []


async def test_unknown_batch(db: Database) -> None:
    with pytest.raises(NotFound):
        await queue.get_batch(db, 42)
    with pytest.raises(NotFound):
        await queue.seal_batch(db, 42)
