"""fresh-data in an in-process worker, against a real HTTP server standing in for the
sources: one progress report per source as it answers, the snapshot and output of
collect-analytics, and a run extended while a slow source is still answering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
import pytest_asyncio

from analytics import fresh, snapshots, user_roles
from shared import queue
from shared.channels import decode_payload
from shared.db import Database
from tests.integration.analytics.sources import FakeSources
from tests.integration.worker.conftest import CollectFrom, StartWorker
from tests.support import wait_until
from worker.handlers import analytics

DAY = date(2026, 3, 2)
QUEUES = {"MS8_WORKER_QUEUES": "fresh-data=2"}


@pytest.fixture
def configured(collect_from: CollectFrom) -> analytics.Collector:
    return collect_from(MS8_SOURCE_TIMEOUT="5,b=0.3", MS8_SOURCE_RETRY_DELAY="0")


@pytest_asyncio.fixture
async def progress(db: Database) -> AsyncIterator[list[dict[str, Any]]]:
    """Every progress notification, as the API's event hub receives them."""
    seen: list[dict[str, Any]] = []
    conn = await db.connect_direct()

    def heard(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        event = decode_payload(payload)
        if event.get("state") == "progress":
            seen.append(event)

    await conn.add_listener(db.channels.events, heard)
    try:
        yield seen
    finally:
        await conn.close()


async def finished(db: Database, job_id: int) -> queue.Job | None:
    job = await queue.get_job(db, job_id)
    return job if job.finished else None


@pytest.mark.usefixtures("configured")
async def test_progress_per_source_then_the_snapshot_and_the_output(
    db: Database, start_worker: StartWorker, sources: FakeSources, progress: list[dict[str, Any]]
) -> None:
    await user_roles.seed(db, 3)
    sources.modes["b"] = "503"
    sent = await fresh.request(db, 3, day=DAY)
    await start_worker(**QUEUES)
    job = await wait_until(lambda: finished(db, sent.id), timeout=30)

    assert (job.state, job.priority, job.singleton_key) == ("completed", 100, "fresh-data:3")
    assert job.output["status"] == "partial"
    assert job.output["missing"] == [{"source": "b", "reason": "http 503"}]
    mine = [(e["progress"], e["message"]) for e in progress if e["ids"] == [sent.id]]
    assert [p for p, _ in mine] == [25, 50, 75]  # the snapshot's write is the last step
    messages = sorted(m for _, m in mine)
    assert messages[0].startswith("a ok (") and messages[2].startswith("c ok (")
    assert messages[1].startswith("b missing: http 503 (")
    assert {m[-5:] for m in messages} == {"(1/3)", "(2/3)", "(3/3)"}
    snapshot = await snapshots.latest(db, 3)
    assert (snapshot.day, snapshot.status, snapshot.job_id) == (DAY, "partial", sent.id)
    assert set(snapshot.data) == {"a", "c"}


@pytest.mark.usefixtures("configured")
async def test_a_slow_source_gets_the_run_extended_instead_of_cut_off(
    db: Database, start_worker: StartWorker, sources: FakeSources
) -> None:
    await user_roles.seed(db, 1)
    sources.modes["a"] = "slow"
    sources.slow_seconds = 2.5  # within a's timeout (5 s), past the run timeout (1 s)
    await queue.create_queue(db, fresh.FRESH_QUEUE, run_timeout_seconds=1.0)
    sent = await fresh.request(db, 1, day=DAY)
    await start_worker(**QUEUES)
    job = await wait_until(lambda: finished(db, sent.id), timeout=30)

    assert (job.state, job.attempt, job.output["status"]) == ("completed", 1, "complete")
    assert job.run_timeout_seconds is not None and job.run_timeout_seconds >= 2.5


async def test_the_same_user_role_twice_is_one_job(db: Database) -> None:
    await user_roles.seed(db, 2)
    first = await fresh.request(db, 2)
    again = await fresh.request(db, 2)
    other = await fresh.request(db, 1)
    assert (first.created, again.created, again.id) == (True, False, first.id)
    assert other.created and other.id != first.id
    policy = await queue.get_queue(db, fresh.FRESH_QUEUE)
    assert (policy.run_timeout_seconds, policy.retry_limit) == (1800.0, 2)
    with pytest.raises(queue.NotFound):
        await fresh.request(db, 99)
