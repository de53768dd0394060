"""Cleaning up after crashes and age: jobs nobody looks after, history past retention, and
jobs a worker holds without knowing it.

All of it is set-based and idempotent, so two processes running it at once (two leaders
for a moment, or a leader and a worker recovering) do no harm:

- ``take_back_jobs`` hands back the active jobs of workers found dead (their session lock
  is gone) and ``reclaim_lost_jobs`` those whose heartbeat went stale (a worker that died
  without a session lock, or lives but hangs). Neither is the job's fault: the attempt is
  not spent, a crash is counted, and a job that has crashed its queue's ``crash_limit``
  workers (a poison job) fails for good. ``reclaim_lost_jobs`` also fails, with a retry
  when attempts are left, jobs that ran past their run timeout: that one is the job's.
  The rows are locked from the moment they are picked until they are handled, so a job
  that completes, heartbeats or is failed by its worker meanwhile is either skipped or
  seen in its new state, never handled twice.
- ``give_back_jobs`` is the same rule applied by a worker to jobs of its own whose handler
  met the database gone (an outage is not the job's fault either): attempt given back, a
  crash counted, the crash limit still ending a job that brings the database down.
- ``prune_history`` deletes finished jobs past their queue's retention in small chunks,
  and ``prune_timelines`` the per-minute rollups and samples past it (never within a day).
- ``release_orphans`` hands back jobs a worker claimed by a fetch whose reply it never
  received (the connection died after the commit).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from shared.conn import Conn, one
from shared.db import Database
from shared.queue import validation as check
from shared.queue.batches import finish_batches
from shared.queue.errors import InvalidInput
from shared.queue.finish import Failure, fail_many
from shared.queue.models import FailResult

TIMEOUT_MESSAGE = "timeout"
STALLED, TIMEOUT, DEAD, OUTAGE = "stalled", "timeout", "dead", "outage"


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """A job taken back from its worker, why, and what became of it: waiting again
    (``created`` or ``retry``, its attempt given back) or ``failed``."""

    id: int
    queue: str
    worker_id: str | None
    reason: str  # "dead", "stalled", "timeout" or "outage"
    result: FailResult
    crash_count: int = 0

    @property
    def poisoned(self) -> bool:
        """Failed for good because it crashed its queue's crash limit of workers."""
        return self.reason != TIMEOUT and self.result.state == "failed"


async def take_back_jobs(
    db: Database, worker_ids: Sequence[str], *, limit: int = 1000,
    conn: Conn | None = None,
) -> list[Reclaimed]:
    """Hand back the active jobs (at most ``limit``) of ``worker_ids``, workers known to be
    dead: each counts a crash, not an attempt, and waits again at once, unless it reached
    its queue's crash limit, which fails it."""
    limit = check.integer(limit, "limit", 1, 100_000)
    if not worker_ids:
        return []
    async with db.transaction(conn) as tx:
        rows = await tx.fetch(db.queries.worker_jobs, list(worker_ids), limit)
        messages = {row["id"]: f"crashed: worker {row['worker_id']} died while running it"
                    for row in rows}
        reclaimed = await _crash(db, tx, rows, DEAD, messages)
    await _finish_failed_batches(db, conn, rows, reclaimed)
    return reclaimed


async def give_back_jobs(
    db: Database, worker_id: str, jobs: Sequence[tuple[int, str]], *,
    conn: Conn | None = None,
) -> list[Reclaimed]:
    """Hand back ``jobs`` ((id, why) pairs) that ``worker_id`` holds and whose handlers
    were interrupted by a database outage: each counts a crash, not an attempt, and waits
    again at once, unless it reached its queue's crash limit, which fails it. Jobs no
    longer active or held by ``worker_id`` are left alone (absent from the result)."""
    if not isinstance(worker_id, str) or not worker_id:
        raise InvalidInput("worker_id", "must be a non-empty string")
    messages = {check.job_id(job_id): message.replace("\x00", "")[:2000]
                for job_id, message in jobs}
    if not messages:
        return []
    async with db.transaction(conn) as tx:
        rows = await tx.fetch(db.queries.held_jobs, sorted(messages), worker_id)
        reclaimed = await _crash(db, tx, rows, OUTAGE, messages)
    await _finish_failed_batches(db, conn, rows, reclaimed)
    return reclaimed


async def reclaim_lost_jobs(
    db: Database, *, stall_seconds: float, timeout_grace_seconds: float = 0.0,
    limit: int = 1000, conn: Conn | None = None,
) -> list[Reclaimed]:
    """Take back the active jobs that stopped heartbeating ``stall_seconds`` ago (a crash,
    as in ``take_back_jobs``), and fail those that ran longer than their run timeout plus
    ``timeout_grace_seconds`` (the attempt counts: retry while attempts are left, else
    failed and sent to the dead-letter queue, if any); at most ``limit``."""
    stall = check.seconds(stall_seconds, "stall_seconds", 0, 7 * 86400, low_open=True)
    grace = check.seconds(timeout_grace_seconds, "timeout_grace_seconds", 0, 7 * 86400)
    limit = check.integer(limit, "limit", 1, 100_000)
    if conn is None:
        async with db.pool.acquire() as own:
            return await _reclaim(db, own, stall, grace, limit)
    return await _reclaim(db, conn, stall, grace, limit)


async def _reclaim(
    db: Database, conn: Conn, stall: float, grace: float, limit: int,
) -> list[Reclaimed]:
    # A probe outside any transaction first (its row locks end with it): on a healthy
    # fleet it finds nothing, and one statement is all a pass costs.
    if not await conn.fetch(db.queries.lost_jobs, stall, grace, 1):
        return []
    async with conn.transaction():
        rows = await conn.fetch(db.queries.lost_jobs, stall, grace, limit)
        stalled = [row for row in rows if row["reason"] == STALLED]
        timed_out = [row for row in rows if row["reason"] == TIMEOUT]
        reclaimed = await _crash(db, conn, stalled, STALLED,
                                 {row["id"]: _stalled(row, stall) for row in stalled})
        failed = {r.id: r for r in await fail_many(
            db, [_timed_out(row) for row in timed_out], conn=conn)}
        reclaimed += [Reclaimed(row["id"], row["queue"], row["worker_id"], TIMEOUT,
                                failed[row["id"]])
                      for row in timed_out if row["id"] in failed]
    await _finish_failed_batches(db, conn, rows, reclaimed)
    return sorted(reclaimed, key=lambda r: r.id)


async def _crash(
    db: Database, conn: Conn, rows: Sequence[asyncpg.Record], reason: str,
    messages: dict[int, str],
) -> list[Reclaimed]:
    """Count a crash for each of the locked job rows, hand back those under their crash
    limit and fail the others for good (inside the caller's transaction)."""
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    crashed = {r["id"]: r for r in await conn.fetch(
        db.queries.crash_jobs, ids, [messages[i] for i in ids])}
    poisoned = [Failure(i, f"crashed {r['crash_count']} workers, its queue's crash limit "
                           f"(a poison job?); the last: {messages[i]}", retry=False)
                for i, r in crashed.items() if not r["back"]]
    failed = {r.id: r for r in await fail_many(db, poisoned, conn=conn)}
    reclaimed = []
    for row in rows:
        r = crashed.get(row["id"])
        if r is None:
            continue
        result = (FailResult(row["id"], r["state"], r["start_after"], None) if r["back"]
                  else failed.get(row["id"]))
        if result is not None:
            reclaimed.append(Reclaimed(row["id"], row["queue"], row["worker_id"], reason,
                                       result, r["crash_count"]))
    return reclaimed


async def _finish_failed_batches(
    db: Database, conn: Conn | None, rows: Sequence[asyncpg.Record],
    reclaimed: Sequence[Reclaimed],
) -> None:
    # Again after the commit: inside the transaction, a sibling ending at the same moment
    # in another transaction was invisible (see batches.finish_batches).
    failed = {r.id for r in reclaimed if r.result.state == "failed"}
    ended = sorted({row["batch_id"] for row in rows
                    if row["batch_id"] is not None and row["id"] in failed})
    await finish_batches(db, ended, conn=conn)


def _stalled(row: asyncpg.Record, stall: float) -> str:
    return (f"stalled: no heartbeat from worker {row['worker_id']} for "
            f"{row['silent_seconds']:.0f} s (limit {stall:g} s)")


def _timed_out(row: asyncpg.Record) -> Failure:
    return Failure(row["id"], TIMEOUT_MESSAGE,
                   f"ran longer than its run timeout of {row['run_timeout_seconds']:g} s "
                   f"(worker {row['worker_id']} did not stop it)")


async def prune_history(
    db: Database, *, limit: int = 1000, conn: Conn | None = None,
) -> int:
    """Delete at most ``limit`` finished jobs past their queue's retention; returns how many.
    Call again while it returns ``limit``: each call is one short statement."""
    limit = check.integer(limit, "limit", 1, 100_000)
    return int(await (conn or db.pool).fetchval(db.queries.prune_history, limit))


async def prune_timelines(
    db: Database, *, limit: int = 1000, keep_seconds: float = 86400.0,
    conn: Conn | None = None,
) -> tuple[int, bool]:
    """Delete at most ``limit`` rows each of rollups and queue samples past their queue's
    retention, and of fleet samples past the longest one, but none of the last
    ``keep_seconds``; returns (rows deleted, whether a chunk came back full)."""
    limit = check.integer(limit, "limit", 1, 100_000)
    keep = check.seconds(keep_seconds, "keep_seconds", 0, 10 * 366 * 86400)
    row = one(await (conn or db.pool).fetchrow(db.queries.prune_timelines, limit, keep))
    counts = (row["rollups"], row["queue_samples"], row["fleet_samples"])
    return sum(counts), max(counts) >= limit


async def release_orphans(
    db: Database, worker_id: str, known_ids: Iterable[int], *,
    conn: Conn | None = None,
) -> list[int]:
    """Hand back (no attempt counted) the active jobs ``worker_id`` holds but does not know
    of: ``known_ids`` are the jobs it is running or still reporting on."""
    if not isinstance(worker_id, str) or not worker_id:
        raise InvalidInput("worker_id", "must be a non-empty string")
    ids = check.job_ids(known_ids)
    rows = await (conn or db.pool).fetch(db.queries.release_orphans, worker_id, ids)
    return [row["id"] for row in rows]
