"""In-process worker tests: a ``Runner`` on a real database, with short intervals.

``start_worker(**env)`` builds a runner from ``WorkerSettings`` (the environment
variables of the worker, so the tests exercise the same parsing) and starts it; every
runner started is stopped at teardown, with no grace, whatever the test did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import pytest_asyncio

from shared.db import Database
from worker.handlers import Handler, load
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
