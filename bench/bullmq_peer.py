"""BullMQ on Redis as measured by the benchmark, at its fastest documented settings.

The option the MS8 team turned down for what a Redis costs to run beside PostgreSQL.
Its side runs as the Node script ``bench/node/bullmq.mjs`` (see its header for the
settings), against a Redis server of the run's own (``bench.redis_server``, started in
``lifetime`` and stopped after).

- Fresh store per measurement: ``install`` empties that server (``FLUSHALL``); the
  measurements of one system never overlap, so this is its fresh database. The
  PostgreSQL database each scenario creates stays unused.
- Enqueue: one ``addBulk()`` call (one pipelined MULTI), timed in the Node process.
- Worker: a ``Worker`` per queue, ``concurrency`` slots.
- Drain window: the jobs in the completed set, their ``processedOn`` and ``finishedOn``
  (milliseconds, the worker's clock), read in one Lua script.
- Idle: what the worker sends to Redis, counted as commands (``INFO commandstats``)
  where the PostgreSQL peers count statements.
- Server CPU: the redis-server process's own (user + system).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from bench import node
from bench.redis_server import RedisServer
from bench.redis_server import version as redis_version
from bench.results import BULLMQ
from bench.statements import Counts
from bench.systems import SendOne, Window, WorkerSpec

SCRIPT = "bullmq.mjs"
QUEUES = ("noop", "probe")
_ENV = "BENCH_REDIS_URL"

# First start and last finish over the completed set of a queue, in one round trip.
_WINDOW = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local first, last = nil, nil
for _, id in ipairs(ids) do
  local times = redis.call('HMGET', ARGV[1] .. id, 'processedOn', 'finishedOn')
  local started, finished = tonumber(times[1]), tonumber(times[2])
  if started and (first == nil or started < first) then first = started end
  if finished and (last == nil or finished > last) then last = finished end
end
return {#ids, tostring(first or ''), tostring(last or '')}
"""


def _instant(ms: bytes | str) -> datetime | None:
    text = ms.decode() if isinstance(ms, bytes) else ms
    return datetime.fromtimestamp(int(float(text)) / 1000, UTC) if text else None


class BullMqSystem:
    name = BULLMQ

    def __init__(self, concurrency: int | None = None) -> None:
        # BENCH_BULLMQ_CONCURRENCY: for the sweep that chose the default.
        self.concurrency = concurrency = concurrency or int(
            os.environ.get("BENCH_BULLMQ_CONCURRENCY", "300"))
        self.server: RedisServer | None = None
        self.client: aioredis.Redis | None = None
        self._readings = 0  # INFO calls made by activity() so far
        self.settings_text = (
            f"BullMQ {node.version('bullmq')} on Node {node.node_version()}, Redis "
            f"{redis_version()} of its own (appendonly, appendfsync everysec, noeviction): "
            f"a Worker per queue, concurrency {concurrency}, defaults otherwise")

    @asynccontextmanager
    async def lifetime(self, log_dir: Path) -> AsyncIterator[None]:
        """The run's Redis server, up while the block runs."""
        self.server = await RedisServer.start(log_dir)
        self.client = aioredis.Redis(host="127.0.0.1", port=self.server.port)
        try:
            yield
        finally:
            await self.client.aclose()
            self.server.stop()
            self.server = self.client = None
            self._readings = 0

    def _redis(self) -> tuple[RedisServer, aioredis.Redis]:
        if self.server is None or self.client is None:
            raise RuntimeError("BullMQ's Redis server is not running")
        return self.server, self.client

    def _env(self) -> dict[str, str]:
        return {_ENV: self._redis()[0].url}

    async def install(self, url: str) -> None:
        await self._redis()[1].flushall()

    async def enqueue_many(self, url: str, n: int) -> float:
        result = await node.call(SCRIPT, self._env(), "enqueue", str(n))
        return float(result["seconds"])

    def sender(self, url: str) -> AbstractAsyncContextManager[SendOne]:
        return node.sender(SCRIPT, self._env())

    def workers(self, url: str, count: int, env: Mapping[str, str]) -> list[WorkerSpec]:
        worker_env = {**env, **self._env(), "BENCH_BULLMQ_CONCURRENCY": str(self.concurrency)}
        return [(f"bullmq-worker-{i}", node.argv(SCRIPT, "worker"), worker_env)
                for i in range(count)]

    async def unfinished(self, conn: asyncpg.Connection) -> int:
        client = self._redis()[1]
        async with client.pipeline(transaction=False) as pipe:
            for queue in QUEUES:
                for state in ("wait", "active", "paused"):
                    pipe.llen(f"bull:{queue}:{state}")
                for state in ("prioritized", "delayed"):
                    pipe.zcard(f"bull:{queue}:{state}")
            counts = await pipe.execute()
        return int(sum(counts))

    async def window(self, conn: asyncpg.Connection) -> Window:
        client = self._redis()[1]
        finished, first, last = await client.eval(  # type: ignore[misc]
            _WINDOW, 1, "bull:noop:completed", "bull:noop:")
        first_start, last_finish = _instant(first), _instant(last)
        if first_start is not None and last_finish is not None and last_finish <= first_start:
            last_finish = first_start + timedelta(milliseconds=1)  # the clock's resolution
        return Window(int(finished), first_start, last_finish)

    def server_seconds(self) -> float:
        """CPU of the store (redis-server) so far, for the drain's per-job cost."""
        return self._redis()[0].cpu_seconds()

    async def activity(self) -> Counts:
        """Commands Redis has served (and to whom), for the idle scenario: the BullMQ
        counterpart of the statements counted in a PostgreSQL database."""
        client = self._redis()[1]
        stats = await client.info("commandstats")
        by_command = {name.removeprefix("cmdstat_"): int(value["calls"])
                      for name, value in stats.items() if isinstance(value, dict)}
        # Redis counts a command once it has run: every earlier reading's INFO and CLIENT
        # LIST are in these counts, this one's INFO is not. Without them, what is left
        # between two readings is the worker's.
        by_command.pop("client|list", None)
        by_command["info"] = by_command.get("info", 0) - self._readings
        self._readings += 1
        clients = await client.client_list()
        held: dict[str, int] = {}
        for entry in clients:
            who = entry.get("name") or "unnamed"
            held[who] = held.get(who, 0) + 1
        return Counts(sum(by_command.values()), 0, held, by_command)
