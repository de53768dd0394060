"""In-process worker tests: a ``Runner`` on a real database, with short intervals.

``start_worker(**env)`` builds a runner from ``WorkerSettings`` (the environment
variables of the worker, so the tests exercise the same parsing) and starts it; every
runner started is stopped at teardown, with no grace, whatever the test did.

``collect_from(**env)`` points the process's analytics collector at ``sources`` (a real
HTTP server with the sources a, b and c) with these settings, and puts the previous
collector back at teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping

import pytest
import pytest_asyncio

from analytics.collect import Collector
from analytics.settings import AnalyticsSettings
from shared.db import Database
from tests.integration.analytics.sources import FakeSources, fake_sources
from worker.handlers import Handler, analytics, load
from worker.runner import Runner
from worker.settings import WorkerSettings

FAST = {
    "MS8_HEARTBEAT_SECONDS": "0.2",
    "MS8_STALL_SECONDS": "2",
    "MS8_RESCUE_SECONDS": "0.2",
    "MS8_TIMEOUT_GRACE_SECONDS": "0.5",
    "MS8_LISTEN_CHECK_SECONDS": "1",
    "MS8_POLL_SECONDS": "60",
    "MS8_WORKER_GRACE_SECONDS": "5",
    "MS8_WORKER_DB_TIMEOUT_SECONDS": "5",
    "MS8_LEADER_WAIT_SECONDS": "1",
}

StartWorker = Callable[..., Awaitable[Runner]]
CollectFrom = Callable[..., Collector]


def worker_settings(**env: str) -> WorkerSettings:
    return WorkerSettings.from_env({**FAST, **env})


@pytest_asyncio.fixture
async def start_worker(db: Database) -> AsyncIterator[StartWorker]:
    runners: list[Runner] = []

    async def start(
        handlers: Mapping[str, Handler] | None = None, *, database: Database | None = None,
        **env: str,
    ) -> Runner:
        env.setdefault("MS8_WORKER_ID", f"w{len(runners) + 1}")
        runner = Runner(database or db, worker_settings(**env),
                        load() if handlers is None else handlers)
        runners.append(runner)
        await runner.start()
        return runner

    yield start
    for runner in runners:
        if not runner.stopped.is_set():
            await runner.stop(grace=0)


@pytest_asyncio.fixture
async def sources() -> AsyncIterator[FakeSources]:
    async with fake_sources() as server:
        yield server


@pytest.fixture
def collect_from(sources: FakeSources) -> Iterator[CollectFrom]:
    before = analytics.collector()

    def configure(**env: str) -> Collector:
        urls = ",".join(f"{n}={sources.base_url(n)}" for n in ("a", "b", "c"))
        return analytics.configure(AnalyticsSettings.from_env({"MS8_SOURCES": urls, **env}))

    yield configure
    analytics.configure(before.settings)
