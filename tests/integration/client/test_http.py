"""``HttpJobQueue`` against the API app served by uvicorn in this process (the process
itself, 503s and restarts are in ``tests/e2e/test_client.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import ms8_client
from ms8_client import HttpJobQueue
from shared import queue as core
from shared.db import Database
from tests.integration.api.conftest import READER_SECRET, WRITER_SECRET, app, live_url
from tests.support import wait_until

__all__ = ["app", "live_url"]  # the API's fixtures, used here


@pytest_asyncio.fixture
async def jobs(live_url: str) -> AsyncIterator[HttpJobQueue]:
    async with HttpJobQueue(live_url, api_key=WRITER_SECRET, poll_interval=0.05) as client:
        yield client


async def run(db: Database, job_id: int, *, complete: bool = False) -> None:
    """What a worker does: claim the job (and, if told, complete it)."""
    await wait_until(lambda: core.fetch(db, {"reports": 1}, "w1"), message="a job to claim")
    if complete:
        await core.complete(db, job_id, {"rows": 3})


async def test_add_status_and_wait_over_the_event_stream(
        db: Database, jobs: HttpJobQueue) -> None:
    sent = await jobs.add("reports", {"user_role": 42}, priority=10, delay=0)
    assert sent.created
    job = await jobs.get_status(sent.id)
    assert (job.queue, job.state, job.data, job.priority) == (
        "reports", "created", {"user_role": 42}, 10)
    waiting = asyncio.create_task(jobs.wait_for_end(sent.id, timeout=20))
    await run(db, sent.id, complete=True)
    ended = await waiting
    assert (ended.state, ended.output) == ("completed", {"rows": 3})


@pytest.mark.parametrize("stream", [True, False], ids=["events", "polling"])
async def test_progress_until_the_end(db: Database, live_url: str, stream: bool) -> None:
    seen: list[tuple[str, int]] = []

    async def work(job_id: int) -> None:
        """A worker that goes on only once the client has seen each step (the stream
        coalesces a burst of changes into one event, and polling may skip some)."""
        await run(db, job_id)
        await wait_until(lambda: ("active", 0) in seen, message="active seen")
        for progress in (30, 60):
            await core.set_progress(db, job_id, progress, f"at {progress}")
            await wait_until(lambda p=progress: ("active", p) in seen, message=f"{progress}")
        await core.complete(db, job_id, {"rows": 3})

    async with HttpJobQueue(live_url, api_key=WRITER_SECRET, poll_interval=0.02,
                            use_event_stream=stream) as jobs:
        sent = await jobs.add("reports")
        worker: asyncio.Task[None] | None = None
        async for job in jobs.progress(sent.id):
            seen.append((job.state, job.progress))
            if worker is None:
                worker = asyncio.create_task(work(sent.id))
        assert worker is not None
        await worker
    assert seen == [("created", 0), ("active", 0), ("active", 30), ("active", 60),
                    ("completed", 100)]


async def test_cancel_and_errors_by_code(live_url: str, jobs: HttpJobQueue) -> None:
    sent = await jobs.add("reports")
    assert (await jobs.cancel(sent.id)).state == "cancelled"
    with pytest.raises(ms8_client.InvalidState, match="it is cancelled") as conflict:
        await jobs.cancel(sent.id)
    assert (conflict.value.status, conflict.value.code) == (409, "invalid_state")
    with pytest.raises(ms8_client.NotFound):
        await jobs.wait_for_end(987654, timeout=10)
    with pytest.raises(ms8_client.InvalidInput) as bad:
        await jobs.add("reports", priority=5000)
    assert bad.value.field == "priority"
    async with HttpJobQueue(live_url, api_key=READER_SECRET) as reader:
        with pytest.raises(ms8_client.Forbidden):
            await reader.add("reports")
        assert (await reader.get_status(sent.id)).state == "cancelled"
    async with HttpJobQueue(live_url) as anonymous:
        with pytest.raises(ms8_client.Unauthorized):
            await anonymous.get_status(sent.id)


async def test_an_idempotency_key_returns_the_same_job(jobs: HttpJobQueue) -> None:
    first = await jobs.add("reports", {"n": 1}, idempotency_key="order-17")
    again = await jobs.add("reports", {"n": 1}, idempotency_key="order-17")
    assert first.created and (again.id, again.created) == (first.id, False)
    with pytest.raises(ms8_client.IdempotencyKeyReused):
        await jobs.add("reports", {"n": 2}, idempotency_key="order-17")
