"""``LocalJobQueue``: the queue interface over the core, against a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import ms8_client
from ms8_client.local import LocalJobQueue
from shared import queue as core
from shared.db import Database


@pytest_asyncio.fixture
async def jobs(db: Database) -> AsyncIterator[LocalJobQueue]:
    async with LocalJobQueue(db, recheck_interval=3600) as local:
        yield local


async def claim(db: Database, queue: str) -> core.Job:
    [job] = await core.fetch(db, {queue: 1}, "w1")
    return job


async def test_add_then_status_then_wait_for_the_end(db: Database, jobs: LocalJobQueue) -> None:
    sent = await jobs.add("reports", {"user_role": 42}, priority=10, run_timeout=60)
    assert sent.created
    job = await jobs.get_status(sent.id)
    assert (job.queue, job.state, job.data, job.priority, job.run_timeout_seconds) == (
        "reports", "created", {"user_role": 42}, 10, 60)
    waiting = asyncio.create_task(jobs.wait_for_end(sent.id, timeout=10))
    await claim(db, "reports")
    await core.complete(db, sent.id, {"rows": 7})
    ended = await waiting
    assert (ended.state, ended.output, ended.finished) == ("completed", {"rows": 7}, True)


async def test_progress_follows_the_job_to_its_end(db: Database, jobs: LocalJobQueue) -> None:
    sent = await jobs.add("reports")
    await claim(db, "reports")
    seen = []
    async for job in jobs.progress(sent.id):
        seen.append((job.state, job.progress))
        if len(seen) == 1:
            await core.set_progress(db, sent.id, 50, "half-way")
        elif len(seen) == 2:
            await core.fail(db, sent.id, "boom", retry=False)
    assert seen == [("active", 0), ("active", 50), ("failed", 50)]


async def test_cancel_and_the_errors_of_the_interface(jobs: LocalJobQueue) -> None:
    sent = await jobs.add("reports")
    assert (await jobs.cancel(sent.id)).state == "cancelled"
    with pytest.raises(ms8_client.InvalidState, match="it is cancelled"):
        await jobs.cancel(sent.id)
    with pytest.raises(ms8_client.NotFound):
        await jobs.get_status(987654)
    with pytest.raises(ms8_client.InvalidInput) as bad:
        await jobs.add("Not A Queue")
    assert bad.value.field == "queue"
    with pytest.raises(TimeoutError):
        await jobs.wait_for_end((await jobs.add("reports")).id, timeout=0.1)


async def test_an_idempotency_key_returns_the_first_job(jobs: LocalJobQueue) -> None:
    first = await jobs.add("reports", {"n": 1}, idempotency_key="order-17")
    again = await jobs.add("reports", {"n": 1}, idempotency_key="order-17")
    assert first == ms8_client.Sent(first.id, True) and again == ms8_client.Sent(first.id, False)
    with pytest.raises(ms8_client.IdempotencyKeyReused):
        await jobs.add("reports", {"n": 2}, idempotency_key="order-17")
    other = await jobs.add("reports", {"n": 1}, idempotency_key="order-18")
    assert other.id != first.id


async def test_a_singleton_key_returns_the_waiting_job(jobs: LocalJobQueue) -> None:
    first = await jobs.add("fresh", singleton_key="user-role-1")
    again = await jobs.add("fresh", singleton_key="user-role-1")
    assert (again.id, again.created) == (first.id, False)
