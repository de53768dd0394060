"""Cleaning up after crashes and age: jobs nobody looks after, history past retention, and
jobs a worker holds without knowing it.

All of it is set-based and idempotent, so two processes running it at once (two leaders
for a moment, or a leader and a worker recovering) do no harm:

- ``reclaim_lost_jobs`` fails, with a retry when attempts are left, active jobs whose
  heartbeat went stale (their worker died) or that ran past their run timeout. The rows
  are locked from the moment they are picked until they are failed, so a job that
  completes, heartbeats or is failed by its worker meanwhile is either skipped or seen
  in its new state, never failed twice.
- ``prune_history`` deletes finished jobs past their queue's retention in small chunks.
- ``release_orphans`` hands back jobs a worker claimed by a fetch whose reply it never
  received (the connection died after the commit).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from shared.db import Database
from shared.queue import validation as check
from shared.queue.batches import finish_batches
from shared.queue.errors import InvalidInput
from shared.queue.finish import Failure, fail_many
from shared.queue.models import FailResult

TIMEOUT_MESSAGE = "timeout"


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """A job taken back from its worker, why, and what became of it (retry or failed)."""

    id: int
    queue: str
    worker_id: str | None
    reason: str  # "stalled" or "timeout"
    result: FailResult


async def reclaim_lost_jobs(
    db: Database, *, stall_seconds: float, timeout_grace_seconds: float = 0.0,
    limit: int = 1000, conn: asyncpg.Connection | None = None,
) -> list[Reclaimed]:
    """Fail the active jobs that stopped heartbeating ``stall_seconds`` ago, or that ran
    longer than their run timeout plus ``timeout_grace_seconds``; at most ``limit``.

    The attempt counts: a job with attempts left goes to retry after its backoff delay,
    the others end as failed (and reach their dead-letter queue, if any).
    """
    stall = check.seconds(stall_seconds, "stall_seconds", 0, 7 * 86400, low_open=True)
    grace = check.seconds(timeout_grace_seconds, "timeout_grace_seconds", 0, 7 * 86400)
    limit = check.integer(limit, "limit", 1, 100_000)
    if conn is None:
        async with db.pool.acquire() as own:
            return await _reclaim(db, own, stall, grace, limit)
    return await _reclaim(db, conn, stall, grace, limit)


async def _reclaim(
    db: Database, conn: asyncpg.Connection, stall: float, grace: float, limit: int,
) -> list[Reclaimed]:
    # A probe outside any transaction first (its row locks end with it): on a healthy
    # fleet it finds nothing, and one statement is all a pass costs.
    if not await conn.fetch(db.queries.lost_jobs, stall, grace, 1):
        return []
    async with conn.transaction():
        rows = await conn.fetch(db.queries.lost_jobs, stall, grace, limit)
        if not rows:
            return []
        failures = [_failure(row, stall) for row in rows]
        results = {r.id: r for r in await fail_many(db, failures, conn=conn)}
    # Again after the commit: inside the transaction, a sibling ending at the same moment
    # in another transaction was invisible (see batches.finish_batches).
    ended = sorted({row["batch_id"] for row in rows if row["batch_id"] is not None
                    and row["id"] in results and results[row["id"]].state == "failed"})
    await finish_batches(db, ended, conn=conn)
    return [
        Reclaimed(row["id"], row["queue"], row["worker_id"], row["reason"], results[row["id"]])
        for row in rows if row["id"] in results
    ]


def _failure(row: asyncpg.Record, stall: float) -> Failure:
    if row["reason"] == "stalled":
        message = (f"stalled: no heartbeat from worker {row['worker_id']} for "
                   f"{row['silent_seconds']:.0f} s (limit {stall:g} s)")
        return Failure(row["id"], message)
    return Failure(row["id"], TIMEOUT_MESSAGE,
                   f"ran longer than its run timeout of {row['run_timeout_seconds']:g} s "
                   f"(worker {row['worker_id']} did not stop it)")


async def prune_history(
    db: Database, *, limit: int = 1000, conn: asyncpg.Connection | None = None,
) -> int:
    """Delete at most ``limit`` finished jobs past their queue's retention; returns how many.
    Call again while it returns ``limit``: each call is one short statement."""
    limit = check.integer(limit, "limit", 1, 100_000)
    return int(await (conn or db.pool).fetchval(db.queries.prune_history, limit))


async def release_orphans(
    db: Database, worker_id: str, known_ids: Iterable[int], *,
    conn: asyncpg.Connection | None = None,
) -> list[int]:
    """Hand back (no attempt counted) the active jobs ``worker_id`` holds but does not know
    of: ``known_ids`` are the jobs it is running or still reporting on."""
    if not isinstance(worker_id, str) or not worker_id:
        raise InvalidInput("worker_id", "must be a non-empty string")
    ids = check.job_ids(known_ids)
    rows = await (conn or db.pool).fetch(db.queries.release_orphans, worker_id, ids)
    return [row["id"] for row in rows]
