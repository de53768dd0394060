"""pg-boss as measured by the benchmark, at its fastest documented settings.

The queue the MS8 team chose, and whose design ms8-jobs rebuilds. Its side runs as the
Node script ``bench/node/pgboss.mjs`` (see its header for every setting):

- Schema: ``start()`` of pg-boss installs it; both queues are created with
  ``notify: true``.
- Enqueue: one ``insert()`` call for all jobs (one statement, the jobs as one JSON
  parameter), timed in the Node process from building the jobs to the commit.
- Worker: ``work()`` on the instance with ``useListenNotify``, ``batchSize`` jobs per
  fetch, ``burstWhenBatchFull``, ``localConcurrency`` fetch loops per process.
- Finished jobs stay in ``pgboss.job`` as ``completed`` (their retention is days):
  ``started_on`` (set by the fetch) and ``completed_on`` give the drain window, on the
  database's clock as for the others.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager

import asyncpg

from bench import node
from bench.results import PGBOSS
from bench.systems import SendOne, Window, WorkerSpec

SCRIPT = "pgboss.mjs"
_ENV = "BENCH_PGBOSS_URL"


class PgBossSystem:
    name = PGBOSS

    def __init__(self, batch_size: int | None = None,
                 local_concurrency: int | None = None) -> None:
        # BENCH_PGBOSS_BATCH / BENCH_PGBOSS_LOCAL: for the sweep that chose the defaults.
        self.batch_size = batch_size or int(os.environ.get("BENCH_PGBOSS_BATCH", "1000"))
        self.local_concurrency = local_concurrency or int(
            os.environ.get("BENCH_PGBOSS_LOCAL", "2"))
        batch_size, local_concurrency = self.batch_size, self.local_concurrency
        self.settings_text = (
            f"pg-boss {node.version('pg-boss')} on Node {node.node_version()}: work() with "
            f"batchSize {batch_size}, localConcurrency {local_concurrency}, "
            "burstWhenBatchFull, useListenNotify and notify queues, defaults otherwise")

    async def install(self, url: str) -> None:
        await node.call(SCRIPT, {_ENV: url}, "install")

    async def enqueue_many(self, url: str, n: int) -> float:
        result = await node.call(SCRIPT, {_ENV: url}, "enqueue", str(n))
        return float(result["seconds"])

    def sender(self, url: str) -> AbstractAsyncContextManager[SendOne]:
        return node.sender(SCRIPT, {_ENV: url})

    def workers(self, url: str, count: int, env: Mapping[str, str]) -> list[WorkerSpec]:
        worker_env = {**env, _ENV: url, "BENCH_PGBOSS_BATCH": str(self.batch_size),
                      "BENCH_PGBOSS_LOCAL": str(self.local_concurrency)}
        return [(f"pgboss-worker-{i}", node.argv(SCRIPT, "worker"), worker_env)
                for i in range(count)]

    async def unfinished(self, conn: asyncpg.Connection) -> int:
        return await conn.fetchval(
            "SELECT count(*) FROM pgboss.job WHERE state IN ('created', 'retry', 'active')")

    async def window(self, conn: asyncpg.Connection) -> Window:
        row = await conn.fetchrow(
            "SELECT count(*) AS finished, min(started_on) AS first_start, "
            "max(completed_on) AS last_finish FROM pgboss.job "
            "WHERE name = 'noop' AND state = 'completed'")
        return Window(row["finished"], row["first_start"], row["last_finish"])

    async def claim_times(self, conn: asyncpg.Connection) -> dict[str, float]:
        """{seq: started_on} of the probe jobs: when the fetch that claimed each began."""
        rows = await conn.fetch(
            "SELECT data->>'seq' AS seq, extract(epoch FROM started_on)::float8 AS at "
            "FROM pgboss.job WHERE name = 'probe' AND started_on IS NOT NULL")
        return {row["seq"]: row["at"] for row in rows}
