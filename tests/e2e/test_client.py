"""The typed client against real processes: an API process and a worker process.

Both implementations of ``JobQueue`` run the same scenario (send, wait, progress, cancel,
idempotency), the HTTP one against ``python -m api``, the in-process one against the
core; the HTTP one also rides out a PostgreSQL outage behind the API, retrying its 503s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

import ms8_client
from devstack.embedded import EmbeddedPostgres
from ms8_client import HttpJobQueue, JobQueue, RetryPolicy
from ms8_client.local import LocalJobQueue
from shared.db import open_database
from tests import conftest as base
from tests.e2e.conftest import start_migrated
from tests.e2e.processes import Process, Processes
from tests.integration.api.server import free_port
from tests.support import wait_until

pytestmark = pytest.mark.slow

SECRET = "client-e2e-secret-0123456789abcdefgh"
API_ENV = {"MS8_API_KEYS": f"e2e:{SECRET}:read,write", "MS8_ENV": "production",
           "MS8_API_HOST": "127.0.0.1", "MS8_API_SSE_PING_SECONDS": "1"}
WORKER_ENV = {"MS8_HEARTBEAT_SECONDS": "0.2", "MS8_LISTEN_CHECK_SECONDS": "1"}


async def start_api(processes: Processes, **env: str) -> tuple[Process, str]:
    port = free_port()
    api = processes.start("api", name="api", PORT=str(port), **API_ENV, **env)
    url = f"http://127.0.0.1:{port}"

    async def live() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{url}/health/live", timeout=1)).status_code == 200
        except httpx.HTTPError:
            return False

    await wait_until(live, timeout=60, interval=0.1, message="the api to answer")
    return api, url


@pytest_asyncio.fixture(params=["http", "local"])
async def jobs(request: pytest.FixtureRequest, processes: Processes, db_url: str
               ) -> AsyncIterator[JobQueue]:
    """The same interface over the API process, or over the core in this process; a
    worker process runs the jobs either way."""
    worker = processes.start("worker", "--queues", "echo,sleep", "--id", "w", name="w",
                             **WORKER_ENV)
    await worker.wait_for_log("worker started")
    if request.param == "http":
        _api, url = await start_api(processes)
        async with HttpJobQueue(url, api_key=SECRET) as over_http:
            yield over_http
    else:
        db = await open_database(base.test_settings(db_url), "client-test")
        try:
            async with LocalJobQueue(db) as local:
                yield local
        finally:
            await db.close()


async def test_send_then_wait_for_the_end(jobs: JobQueue) -> None:
    sent = await jobs.add("echo", {"user_role": 42}, priority=5)
    ended = await jobs.wait_for_end(sent.id, timeout=60)
    assert (ended.id, ended.state, ended.priority) == (sent.id, "completed", 5)
    assert ended.output["data"] == {"user_role": 42}
    assert (await jobs.get_status(sent.id)).state == "completed"


async def test_progress_is_streamed_until_the_end(jobs: JobQueue) -> None:
    sent = await jobs.add("sleep", {"seconds": 3})
    seen = [(job.state, job.progress) async for job in jobs.progress(sent.id)]
    assert seen[-1] == ("completed", 100)
    progress = [p for state, p in seen if state == "active"]
    assert progress == sorted(progress) and any(0 < p < 100 for p in progress), seen


async def test_cancel_a_running_job(jobs: JobQueue) -> None:
    sent = await jobs.add("sleep", {"seconds": 600})
    async for job in jobs.progress(sent.id):
        if job.state == "active":
            break
    cancelled = await jobs.cancel(sent.id)
    assert cancelled.state == "cancelled"
    assert (await jobs.wait_for_end(sent.id, timeout=30)).state == "cancelled"
    with pytest.raises(ms8_client.InvalidState):
        await jobs.cancel(sent.id)


async def test_an_idempotency_key_returns_the_same_job(jobs: JobQueue) -> None:
    first = await jobs.add("echo", {"order": 17}, idempotency_key="order-17")
    again = await jobs.add("echo", {"order": 17}, idempotency_key="order-17")
    assert first.created and (again.id, again.created) == (first.id, False)
    assert (await jobs.wait_for_end(first.id, timeout=60)).state == "completed"


async def test_a_503_during_a_postgres_outage_is_retried_until_the_send_lands(
    own_cluster: EmbeddedPostgres, processes: Processes, caplog: pytest.LogCaptureFixture,
) -> None:
    url = await start_migrated(own_cluster)
    _api, api_url = await start_api(processes, DATABASE_URL=url)
    caplog.set_level(logging.INFO, logger="ms8_client")
    async with HttpJobQueue(api_url, api_key=SECRET, retry=RetryPolicy(retries=60)) as jobs:
        await asyncio.to_thread(own_cluster.stop)
        async with httpx.AsyncClient(base_url=api_url,
                                     headers={"Authorization": f"Bearer {SECRET}"}) as raw:
            down = await raw.get("/jobs/1")
            assert down.status_code == 503 and down.headers["Retry-After"], down.text

            sending = asyncio.create_task(jobs.add("echo", {"across": "outage"}))
            await wait_until(lambda: "retrying POST /jobs" in caplog.text, timeout=30,
                             message="the client to retry a 503")
            await asyncio.to_thread(own_cluster.start)
            sent = await asyncio.wait_for(sending, 120)
            assert sent.created

            worker = processes.start("worker", "--queues", "echo", "--id", "w", name="w",
                                     DATABASE_URL=url, **WORKER_ENV)
            await worker.wait_for_log("worker started")
            ended = await jobs.wait_for_end(sent.id, timeout=60)
            assert (ended.state, ended.output["data"]) == ("completed", {"across": "outage"})
            page = (await raw.get("/jobs", params={"queue": "echo"})).json()
            assert [job["id"] for job in page["jobs"]] == [sent.id]  # sent once, retried
