"""ms8-jobs as measured by the benchmark: the queue core in-process, ``python -m worker``.

- Schema: the migrations, applied by ``shared.migrate.migrate``.
- Enqueue: ``shared.queue.send_many`` with ``JobSpec.of`` for every job (validation and
  JSON encoding included in the time), one INSERT for all of them.
- Single sends: ``shared.queue.send`` on an open pool.
- Worker: ``python -m worker`` subprocesses running the benchmark's handlers.
- Drain window: ``started_at`` and ``completed_at`` of the finished jobs in history.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import asyncpg

from bench.processes import python_module
from bench.results import MS8
from bench.systems import SendOne, Window, WorkerSpec
from shared.db import Database, open_database
from shared.migrate import migrate
from shared.queue import JobSpec, send, send_many
from shared.settings import Settings
from shared.sql import Queries

SCHEMA = "ms8jobs"
NOOP_QUEUE = "bench-noop"
PROBE_QUEUE = "bench-probe"


def settings_for(url: str, **env: str) -> Settings:
    return Settings.from_env({"DATABASE_URL": url, "MS8_SCHEMA": SCHEMA,
                              "MS8_LOG_LEVEL": "warning", **env})


@asynccontextmanager
async def opened(url: str, **env: str) -> AsyncIterator[Database]:
    db = await open_database(settings_for(url, **env), "bench")
    try:
        yield db
    finally:
        await db.close()


def worker_available() -> bool:
    return importlib.util.find_spec("worker.__main__") is not None


class Ms8System:
    name = MS8

    def __init__(self, concurrency: int = 1000) -> None:
        self.concurrency = concurrency
        self.settings_text = (f"python -m worker, {NOOP_QUEUE} concurrency {concurrency}, "
                              "default settings otherwise")

    async def install(self, url: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn, Queries.load(SCHEMA))
        finally:
            await conn.close()

    async def enqueue_many(self, url: str, n: int) -> float:
        async with opened(url) as db:
            await db.pool.execute("SELECT 1")  # the connection is open before the clock starts
            started = time.perf_counter()
            await send_many(db, [JobSpec.of(NOOP_QUEUE, {"n": i}) for i in range(n)])
            return time.perf_counter() - started

    @asynccontextmanager
    async def sender(self, url: str) -> AsyncIterator[SendOne]:
        async with opened(url) as db:
            async def send_one(seq: str) -> None:
                await send(db, PROBE_QUEUE, {"seq": seq})

            yield send_one

    def workers(self, url: str, count: int, env: Mapping[str, str]) -> list[WorkerSpec]:
        if not worker_available():
            raise RuntimeError("the worker (python -m worker) is not there yet")
        worker_env = {
            "DATABASE_URL": url, "MS8_SCHEMA": SCHEMA, "MS8_LOG_LEVEL": "warning",
            "MS8_WORKER_HANDLER_MODULES": "bench.ms8_handlers",
            "MS8_WORKER_QUEUES": f"{NOOP_QUEUE}={self.concurrency},{PROBE_QUEUE}=10",
            **env,
        }
        return [(f"ms8-worker-{i}", python_module("worker"), worker_env) for i in range(count)]

    async def unfinished(self, conn: asyncpg.Connection) -> int:
        return await conn.fetchval(f'SELECT count(*) FROM "{SCHEMA}".jobs')

    async def window(self, conn: asyncpg.Connection) -> Window:
        row = await conn.fetchrow(
            f"SELECT count(*) AS finished, min(started_at) AS first_start, "
            f"max(completed_at) AS last_finish FROM \"{SCHEMA}\".history "
            f"WHERE state = 'completed'")
        return Window(row["finished"], row["first_start"], row["last_finish"])

    async def claim_times(self, conn: asyncpg.Connection) -> dict[str, float]:
        """{seq: started_at} of the finished probe jobs (the claim statement's start)."""
        rows = await conn.fetch(
            f"SELECT data->>'seq' AS seq, extract(epoch FROM started_at)::float8 AS at "
            f"FROM \"{SCHEMA}\".history WHERE queue = $1", PROBE_QUEUE)
        return {row["seq"]: row["at"] for row in rows}
