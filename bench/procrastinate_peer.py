"""Procrastinate as measured by the benchmark, at its fastest documented settings.

- Enqueue: ``Task.batch_defer_async`` (one statement for all jobs), then ``ANALYZE``:
  its fetch plan degrades on a freshly bulk-loaded table until statistics exist.
- Worker: ``procrastinate worker`` (its own CLI) with ``--concurrency`` slots and
  LISTEN/NOTIFY on (its default). It fetches one job per statement per free slot.
  Jobs stay in ``procrastinate_jobs`` with their final status (``--delete-jobs`` off,
  the default); their ``started`` and ``succeeded`` events give the drain window.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import asyncpg
import procrastinate

from bench import procrastinate_app
from bench.processes import python_module
from bench.results import PROCRASTINATE
from bench.systems import SendOne, Window, WorkerSpec

_ENV = "BENCH_PROCRASTINATE_DSN"


@asynccontextmanager
async def _opened(url: str) -> AsyncIterator[procrastinate.App]:
    """The benchmark's app, connected to ``url`` for the duration of the block."""
    app = procrastinate_app.app
    with app.replace_connector(procrastinate.PsycopgConnector(conninfo=url)):
        async with app.open_async():
            yield app


class ProcrastinateSystem:
    name = PROCRASTINATE

    def __init__(self, concurrency: int = 10) -> None:
        self.concurrency = concurrency
        self.settings_text = (f"procrastinate worker, --concurrency {concurrency}, "
                              "listen_notify on, psycopg pool")

    async def install(self, url: str) -> None:
        async with _opened(url) as app:
            await app.schema_manager.apply_schema_async()

    async def enqueue_many(self, url: str, n: int) -> float:
        async with _opened(url) as app:
            task = app.tasks["noop"]
            started = time.perf_counter()
            await task.batch_defer_async(*({"n": i} for i in range(n)))
            elapsed = time.perf_counter() - started
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("ANALYZE procrastinate_jobs")
        finally:
            await conn.close()
        return elapsed

    @asynccontextmanager
    async def sender(self, url: str) -> AsyncIterator[SendOne]:
        async with _opened(url) as app:
            task = app.tasks["probe"]

            async def send(seq: str) -> None:
                await task.defer_async(seq=seq)

            yield send

    def workers(self, url: str, count: int, env: Mapping[str, str]) -> list[WorkerSpec]:
        argv = python_module(
            "procrastinate", "--app", "bench.procrastinate_app.app",
            "worker", "--concurrency", str(self.concurrency), "--listen-notify")
        return [(f"procrastinate-worker-{i}", argv, {**env, _ENV: url})
                for i in range(count)]

    async def unfinished(self, conn: asyncpg.Connection) -> int:
        return await conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")

    async def window(self, conn: asyncpg.Connection) -> Window:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE type = 'succeeded') AS finished,"
            "       min(at) FILTER (WHERE type = 'started') AS first_start,"
            "       max(at) FILTER (WHERE type = 'succeeded') AS last_finish "
            "FROM procrastinate_events")
        return Window(row["finished"], row["first_start"], row["last_finish"])
