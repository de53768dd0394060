"""The stage of a chaos scenario: a PostgreSQL cluster of its own, the microservices stub,
and the project's processes started against both (``Lab``, the ``lab`` fixture).

Workers get fast but realistic settings: liveness at its default (a killed worker's jobs
are found through its session lock), a stall timeout far away (so only liveness brings
jobs back), a one-second heartbeat and listener check. Each worker started gets a new id
(``w1``, ``w2``, ...), as a restarted container would.

Reads during an outage fail with connection errors; ``tolerant`` turns those into
"not yet", so a test can keep waiting through them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import httpx

from analytics import runs
from analytics.fanout import COLLECT_QUEUE, DAILY_QUEUE, DONE_QUEUE, night_of
from analytics.models import NightlyRun
from analytics.settings import DEFAULT_SOURCE_NAMES
from devstack.embedded import EmbeddedPostgres
from shared import queue
from shared.db import Database, is_connection_error
from tests.e2e.chaos.scale import Scale
from tests.e2e.processes import Process, Processes
from tests.stub_server import StubServer
from tests.support import free_port, wait_until

T = TypeVar("T")

QUEUES = f"{COLLECT_QUEUE}=10,{DAILY_QUEUE}=1,{DONE_QUEUE}=1"
WORKER_ENV = {
    "MS8_POOL_MIN": "1",
    "MS8_POOL_MAX": "6",
    "MS8_HEARTBEAT_SECONDS": "1",
    "MS8_STALL_SECONDS": "60",
    "MS8_LISTEN_CHECK_SECONDS": "1",
    "MS8_LEADER_WAIT_SECONDS": "1",
    "MS8_SOURCE_RETRY_DELAY": "0.05",
    "MS8_JOB_LOG_LEVEL": "debug",  # no line per job
}
API_SECRET = "chaos-api-secret-0123456789abcdef"
API_ENV = {"MS8_API_KEYS": f"chaos:{API_SECRET}:read,write", "MS8_ENV": "production",
           "MS8_API_HOST": "127.0.0.1"}


async def tolerant(read: Callable[[], Awaitable[T]]) -> T | None:
    """``read()``, or None when the database cannot be reached right now."""
    try:
        return await read()
    except Exception as error:
        if is_connection_error(error) or isinstance(error, OSError | asyncio.TimeoutError):
            return None
        raise


@dataclass
class Lab:
    cluster: EmbeddedPostgres
    url: str
    db: Database
    stub: StubServer
    processes: Processes
    scale: Scale
    source_names: tuple[str, ...] = DEFAULT_SOURCE_NAMES
    _started: int = field(default=0)

    # ------------------------------------------------------------------ processes

    def worker(self, queues: str = QUEUES, **env: str) -> Process:
        """Start a worker with a new id, serving the MS8 queues against the stub."""
        self._started += 1
        name = f"w{self._started}"
        sources = ",".join(f"{s}={self.stub.base_url(s)}" for s in self.source_names)
        return self.processes.start("worker", "--queues", queues, "--id", name, name=name,
                                    **{**WORKER_ENV, "MS8_SOURCES": sources, **env})

    async def workers(self, n: int, queues: str = QUEUES, **env: str) -> list[Process]:
        """Start ``n`` workers and wait until each has started."""
        started = [self.worker(queues, **env) for _ in range(n)]
        for proc in started:
            await proc.wait_for_log("worker started", timeout=90)
        return started

    @staticmethod
    async def stop(procs: list[Process]) -> list[int]:
        """SIGTERM each (once it has started: before, the signal would just kill it);
        their exit statuses."""
        statuses = []
        for proc in procs:
            await proc.wait_for_log("worker started", timeout=90)
            statuses.append(await proc.stop())
        return statuses

    def scheduler(self, name: str, **env: str) -> Process:
        return self.processes.start("scheduler", name=name, **env)

    async def api(self, **env: str) -> str:
        """Start the API process; returns its base URL once it answers."""
        port = free_port()
        self.processes.start("api", name="api", PORT=str(port), **API_ENV, **env)
        url = f"http://127.0.0.1:{port}"

        async def live() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    answer = await client.get(f"{url}/health/live", timeout=1)
                    return answer.status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(live, timeout=90, interval=0.1, message="the api to answer")
        return url

    # ------------------------------------------------------------------ the stub

    async def sources(self, **changes: Any) -> None:
        """Change every source of the stub alike (latency_ms, failure_rate, mode)."""
        for source in self.source_names:
            await self.stub.set(source, **changes)

    # ------------------------------------------------------------------ the night

    async def fire(self) -> date:
        """Fire the daily-batch schedule now, as "Run now" does; returns its night."""
        firing = await queue.run_now(self.db, DAILY_QUEUE)
        return night_of(firing.fire_time)

    async def ended(self, night: date) -> tuple[int, int]:
        """(collect jobs ended, sent) for the night so far; (0, 0) before the fan-out."""
        run = await tolerant(lambda: self.run(night))
        if run is None or run.batch_id is None:
            return 0, 0
        batch = await tolerant(lambda: queue.get_batch(self.db, run.batch_id or 0))
        if batch is None:
            return 0, run.sent
        t = batch.totals
        return t.completed + t.failed + t.cancelled, run.sent

    async def until_ended(self, night: date, share: float, timeout: float) -> None:
        """Until ``share`` (0..1) of the night's user-roles have had their job end."""
        async def far_enough() -> bool:
            done, sent = await self.ended(night)
            return sent > 0 and done >= share * sent
        await wait_until(far_enough, timeout=timeout, interval=0.1,
                         message=f"{share:.0%} of night {night} ended")

    async def run(self, night: date) -> NightlyRun | None:
        """The night's run, None before its fan-out opened it."""
        try:
            return await runs.get(self.db, night)
        except queue.NotFound:
            return None

    async def summary_now(self, night: date) -> NightlyRun | None:
        """The night's run once its summary is written, else None (also while the
        database is out of reach)."""
        run = await tolerant(lambda: self.run(night))
        return run if run is not None and run.finished_at is not None else None

    async def summary(self, night: date, timeout: float) -> NightlyRun:
        """Wait for the night's summary (through outages)."""
        return await wait_until(lambda: self.summary_now(night), timeout=timeout, interval=0.2,
                                message=f"the summary of night {night}")

    async def active_on(self, worker_id: str) -> int:
        """Jobs the registry says ``worker_id`` holds."""
        return await self.db.pool.fetchval(
            f'SELECT count(*) FROM "{self.db.schema}".jobs'
            " WHERE state = 'active' AND worker_id = $1", worker_id)
