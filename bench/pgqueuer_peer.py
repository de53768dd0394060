"""PGQueuer as measured by the benchmark, at its fastest documented settings.

- Schema: ``durability=balanced`` (the job table is logged like ours; PGQueuer's log and
  statistics tables are unlogged). ``volatile`` would make the job table itself unlogged,
  which loses jobs in a crash: not comparable with a durable queue.
- Enqueue: one ``Queries.enqueue`` call with lists, its bulk path (one statement).
- Worker: PGQueuer's own supervisor (``pgqueuer.run``, what ``pgq run`` calls, on
  uvloop) with ``batch_size`` jobs per dequeue, over one asyncpg connection, no
  scheduler. Finished jobs leave its table; their ``picked`` and ``successful`` rows
  in ``pgqueuer_log`` give the drain window.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import asyncpg
from pgqueuer import AsyncpgDriver, Queries
from pgqueuer.adapters.persistence.qb import (
    DBSettings,
    Durability,
    QueryBuilderEnvironment,
)

from bench.processes import python_module
from bench.results import PGQUEUER
from bench.systems import SendOne, Window, WorkerSpec


class PgQueuerSystem:
    name = PGQUEUER

    def __init__(self, batch_size: int = 300) -> None:
        self.batch_size = batch_size
        self.settings_text = (f"pgqueuer.run (as pgq run), batch_size {batch_size}, asyncpg, "
                              "uvloop, durability=balanced")

    async def install(self, url: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            settings = DBSettings(durability=Durability.balanced)
            queries = Queries(AsyncpgDriver(conn), qbe=QueryBuilderEnvironment(settings))
            await queries.install()
        finally:
            await conn.close()

    async def enqueue_many(self, url: str, n: int) -> float:
        conn = await asyncpg.connect(url)
        try:
            queries = Queries(AsyncpgDriver(conn))
            started = time.perf_counter()
            await queries.enqueue(
                ["noop"] * n, [b'{"n": %d}' % i for i in range(n)], [0] * n)
            return time.perf_counter() - started
        finally:
            await conn.close()

    @asynccontextmanager
    async def sender(self, url: str) -> AsyncIterator[SendOne]:
        conn = await asyncpg.connect(url)
        queries = Queries(AsyncpgDriver(conn))

        async def send(seq: str) -> None:
            await queries.enqueue("probe", seq.encode())

        try:
            yield send
        finally:
            await conn.close()

    def workers(self, url: str, count: int, env: Mapping[str, str]) -> list[WorkerSpec]:
        argv = python_module("bench.pgqueuer_app", str(self.batch_size))
        return [(f"pgqueuer-worker-{i}", argv, {**env, "PGDSN": url}) for i in range(count)]

    async def unfinished(self, conn: asyncpg.Connection) -> int:
        return await conn.fetchval(
            "SELECT count(*) FROM pgqueuer WHERE status IN ('queued', 'picked')")

    async def window(self, conn: asyncpg.Connection) -> Window:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'successful') AS finished,"
            "       min(created) FILTER (WHERE status = 'picked') AS first_start,"
            "       max(created) FILTER (WHERE status = 'successful') AS last_finish "
            "FROM pgqueuer_log")
        return Window(row["finished"], row["first_start"], row["last_finish"])
