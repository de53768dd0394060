"""The worker fleet, read for people: who runs, where, which queues, how busy.

Workers write their own registry rows (``worker/registry.py``); this is the read side that
the API and dashboard use, since they may not import the worker. A worker's active jobs
are counted from the hot table, so the number is true even when its registry row is
stale.

A queue is *served* when a worker seen recently runs it: sends to any other queue are
still accepted (a worker may come later), and the API and dashboard say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from shared.db import Database
from shared.queue import validation as check


@dataclass(frozen=True, slots=True)
class Worker:
    id: str
    host: str
    pid: int
    queues: dict[str, int]  # {queue: concurrency}
    concurrency: int
    started_at: datetime
    last_seen_at: datetime
    active_jobs: int

    @classmethod
    def from_record(cls, row: Any, active_jobs: int) -> Worker:
        return cls(
            id=row["id"], host=row["host"], pid=row["pid"], queues=orjson.loads(row["queues"]),
            concurrency=row["concurrency"], started_at=row["started_at"],
            last_seen_at=row["last_seen_at"], active_jobs=active_jobs)


async def list_workers(db: Database) -> list[Worker]:
    """The registered workers, oldest first, each with the number of jobs it holds."""
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(db.queries.list_workers)
        active = {r["worker_id"]: r["n"] for r in await conn.fetch(
            db.queries.active_jobs_by_worker)}
    return [Worker.from_record(row, active.get(row["id"], 0)) for row in rows]


async def served_queues(db: Database, *, seen_within: float) -> frozenset[str]:
    """The queues run by some worker seen in the last ``seen_within`` seconds (registry
    rows are refreshed every ``MS8_WORKER_REGISTRY_SECONDS``, 60 by default)."""
    seconds = check.seconds(seen_within, "seen_within", 0, 30 * 86400, low_open=True)
    rows = await db.pool.fetch(db.queries.served_queues, seconds)
    return frozenset(row["name"] for row in rows)
