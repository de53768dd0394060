"""Fresh data end to end: the stub as the microservices, a real API and a real worker
process serving both the nightly batch and fresh-data with small concurrency.

A person's request sent while a night's 5,000 collect-analytics jobs wait starts before
every one of them that was still waiting; its progress names each source as it answers
on the job's event stream; a second request returns the same job; the result is the
job's output and the user-role's latest snapshot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio

from analytics import fanout, fresh, user_roles
from analytics.settings import DEFAULT_SOURCE_NAMES
from shared import queue
from shared.db import Database
from tests.conftest import SCHEMA
from tests.e2e.processes import Processes
from tests.e2e.test_client import SECRET, start_api
from tests.integration.api.sse import events
from tests.stub_server import StubServer, running_stub
from tests.support import wait_until

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {SECRET}"}
BATCH = 5000
USER_ROLE = 4242
# Sources answer one after another, far enough apart that each answer is its own event.
LATENCY_MS = {"skills-engine": 600, "course-builder": 1200, "assessment": 1800,
              "learner-ai": 2400}
WORKER_ENV = {"MS8_HEARTBEAT_SECONDS": "0.2", "MS8_STALL_SECONDS": "2",
              "MS8_LISTEN_CHECK_SECONDS": "1", "MS8_JOB_LOG_LEVEL": "debug"}


@pytest_asyncio.fixture
async def stub() -> AsyncIterator[StubServer]:
    flags = [f"--source={name}:latency_ms={ms}" for name, ms in LATENCY_MS.items()]
    async with running_stub(*flags) as server:
        yield server


async def waiting_collect_ids(db: Database) -> list[int]:
    rows = await db.pool.fetch(
        f"SELECT id FROM \"{SCHEMA}\".jobs WHERE queue = $1 AND state IN ('created', 'retry')",
        fanout.COLLECT_QUEUE)
    return [row["id"] for row in rows]


async def batch_started(db: Database) -> bool:
    return await db.pool.fetchval(
        f"SELECT count(*) FROM \"{SCHEMA}\".jobs WHERE queue = $1 AND state = 'active'",
        fanout.COLLECT_QUEUE) > 0


async def started_before(db: Database, ids: list[int], moment: datetime) -> int:
    """How many of ``ids`` started before ``moment`` (waiting, active or finished)."""
    return await db.pool.fetchval(
        f"SELECT count(*) FROM (SELECT started_at FROM \"{SCHEMA}\".jobs WHERE id = ANY($1) "
        f"UNION ALL SELECT started_at FROM \"{SCHEMA}\".history WHERE id = ANY($1)) s "
        "WHERE s.started_at < $2", ids, moment)


async def test_fresh_data_starts_before_the_waiting_batch_with_progress_per_source(
    db: Database, processes: Processes, stub: StubServer,
) -> None:
    await user_roles.seed(db, BATCH)
    night = datetime.now(UTC).date()
    assert (await fanout.fan_out(db, night, chunk=1000)).sent == BATCH
    _api, url = await start_api(processes)
    sources = ",".join(f"{s}={stub.base_url(s)}" for s in DEFAULT_SOURCE_NAMES)
    worker = processes.start(
        "worker", "--queues", f"{fanout.COLLECT_QUEUE}=2,{fresh.FRESH_QUEUE}=1", "--id", "w1",
        name="worker", MS8_SOURCES=sources, **WORKER_ENV)
    await worker.wait_for_log("worker started")
    await wait_until(lambda: batch_started(db), timeout=60, message="the batch running")

    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as client:
        asked = await client.post(f"/user-roles/{USER_ROLE}/fresh-data")
        assert asked.status_code == 202, asked.text
        job_id = asked.json()["id"]
        assert asked.json()["created"] is True
        assert asked.headers["location"] == f"/jobs/{job_id}"
        waiting = await waiting_collect_ids(db)  # read after the request was accepted
        again = await client.post(f"/user-roles/{USER_ROLE}/fresh-data")
        assert again.status_code == 202
        assert again.json() == {"id": job_id, "created": False, "user_role_id": USER_ROLE}

        messages: list[str] = []
        last: dict[str, object] = {}
        async with client.stream("GET", f"/jobs/{job_id}/events") as stream:
            async for event in events(stream):
                if event.name == "job":
                    last = event.data
                    message = event.data["progress_message"]
                    if message and message not in messages:
                        messages.append(message)
                if event.name == "end":
                    break
        assert last["state"] == "completed", last
        assert last["output"]["status"] == "complete" and last["output"]["missing"] == []
        assert [m for m in messages if m.endswith("/4)")] == [
            f"{name} ok ({i}/4)" for i, name in enumerate(LATENCY_MS, start=1)]

        job = (await client.get(f"/jobs/{job_id}")).json()
        assert job == last
        snapshot = await client.get(f"/user-roles/{USER_ROLE}/snapshot")
        assert snapshot.status_code == 200
        assert snapshot.json()["job_id"] == job_id and snapshot.json()["status"] == "complete"
        assert set(snapshot.json()["data"]) == set(DEFAULT_SOURCE_NAMES)
        assert snapshot.json()["day"] == night.isoformat()

    # Almost all of the night was still waiting, and none of it started before the request.
    assert len(waiting) >= BATCH - 100
    fresh_job = await queue.get_job(db, job_id)
    assert fresh_job.started_at is not None
    assert await started_before(db, waiting, fresh_job.started_at) == 0
    # The batch goes on: those waiting jobs start after it, not never.
    await wait_until(lambda: started_before(db, waiting, datetime.now(UTC)), timeout=60,
                     message="the batch going on")
    await queue.cancel_waiting(db, fanout.COLLECT_QUEUE)
