"""Helpers shared by the tests: waiting for a condition instead of sleeping, free ports,
registry rows, the maintenance leadership lock."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(
    predicate: Callable[[], Awaitable[Any] | Any], *, timeout: float = 10.0,
    interval: float = 0.02, message: str = "condition",
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server started by a test)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def register_worker(
    db: Any, worker_id: str, queues: dict[str, int], *, seen_seconds_ago: float = 0.0,
) -> None:
    """A row in the worker registry, as a worker running ``queues`` writes it, last seen
    ``seen_seconds_ago``."""
    import orjson

    await db.pool.execute(
        f'INSERT INTO "{db.schema}".workers (id, host, pid, queues, concurrency, last_seen_at)'
        " VALUES ($1, 'test-host', 1, $2::jsonb, $3, now() - make_interval(secs => $4))",
        worker_id, orjson.dumps(queues).decode(), sum(queues.values()), seen_seconds_ago)


async def leader_locks(db: Any) -> tuple[int, int]:
    """(granted, waiting) maintenance leadership locks in the database of ``db`` (each
    worker also holds a session lock of its own, not counted here)."""
    row = await db.pool.fetchrow(
        "SELECT count(*) FILTER (WHERE granted) AS granted,"
        "       count(*) FILTER (WHERE NOT granted) AS waiting"
        " FROM pg_locks WHERE locktype = 'advisory' AND database ="
        " (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND (classid::bigint << 32) | objid::bigint"
        "     = hashtextextended('ms8-jobs leader ' || $1::text, 0)", db.schema)
    return row["granted"], row["waiting"]
