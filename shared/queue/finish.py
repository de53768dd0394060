"""Ending jobs — complete, fail (retry or for good), cancel (some, or a queue's waiting
ones) — and bringing them back.

Every statement here is set-based, so a worker completes a whole flush of jobs in one
round trip. Jobs of batches are followed by a check that finishes the batches whose last
child just ended (see ``batches.finish_batches``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.conn import Conn
from shared.db import Database
from shared.queue import validation as check
from shared.queue.batches import finish_batches
from shared.queue.errors import InvalidState, NotFound
from shared.queue.models import FailResult, Job

Executor = Conn | asyncpg.Pool


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed run: the error, its traceback, and whether a retry is allowed at all."""

    job_id: int
    message: str
    traceback: str | None = None
    retry: bool = True


async def complete_many(
    db: Database, results: Sequence[tuple[int, Any]], *, worker_id: str | None = None,
    conn: Conn | None = None,
) -> list[int]:
    """Complete active jobs with their outputs; returns the ids completed.

    With ``worker_id``, only jobs that worker holds are completed: a job reclaimed from a
    stalled worker and running elsewhere is left to its new holder.
    """
    if not results:
        return []
    ids = [check.job_id(job_id) for job_id, _ in results]
    outputs = [None if out is None else check.json_text(out, "output") for _, out in results]
    ex = conn or db.pool
    rows = await ex.fetch(db.queries.complete_jobs, ids, outputs, worker_id)
    await _finish_batches_of(db, ex, rows)
    return [row["id"] for row in rows]


async def complete(
    db: Database, job_id: int, output: Any = None, *, worker_id: str | None = None,
    conn: Conn | None = None,
) -> None:
    """Complete one active job; raises if it is not active (or not held by ``worker_id``)."""
    if not await complete_many(db, [(job_id, output)], worker_id=worker_id, conn=conn):
        await _explain_missing(db, job_id, "complete", conn)


async def fail_many(
    db: Database, failures: Sequence[Failure], *, worker_id: str | None = None,
    conn: Conn | None = None,
) -> list[FailResult]:
    """Fail active jobs: those with attempts left retry after their backoff delay, the rest
    end as failed (with a copy sent to the queue's dead-letter queue, if it names one)."""
    if not failures:
        return []
    ids = [check.job_id(f.job_id) for f in failures]
    messages = [str(f.message)[:10_000] for f in failures]
    tracebacks = [None if f.traceback is None else str(f.traceback)[:50_000] for f in failures]
    retries = [bool(f.retry) for f in failures]
    ex = conn or db.pool
    rows = await ex.fetch(db.queries.fail_jobs, ids, messages, tracebacks, retries, worker_id)
    await _finish_batches_of(db, ex, [r for r in rows if r["state"] == "failed"])
    return [
        FailResult(r["id"], r["state"], r["start_after"], r["dead_letter_id"]) for r in rows
    ]


async def fail(
    db: Database, job_id: int, message: str, traceback: str | None = None, *,
    retry: bool = True, worker_id: str | None = None, conn: Conn | None = None,
) -> FailResult:
    """Fail one active job (see ``fail_many``)."""
    results = await fail_many(
        db, [Failure(job_id, message, traceback, retry)], worker_id=worker_id, conn=conn)
    if not results:
        await _explain_missing(db, job_id, "fail", conn)
    return results[0]


async def cancel(
    db: Database, job_ids: Iterable[int], *, conn: Conn | None = None,
) -> list[int]:
    """Cancel waiting or active jobs; returns the ids cancelled (finished ones are skipped).
    Workers running one of them hear of it on the cancel channel and stop its handler."""
    return await _end_jobs(db, db.queries.cancel_jobs, job_ids, conn, False)


async def cancel_waiting(db: Database, queue: str, *, chunk: int = 5000) -> int:
    """Cancel every job waiting in ``queue`` (created, retry, delayed), leaving active ones
    to run; returns how many were cancelled. They end in history as cancelled, like any
    other cancel, and batches they emptied finish.

    In chunks of ``chunk`` jobs, each cancelled by one short statement, up to the jobs
    that were there when the call began: a queue of any size is emptied without one long
    lock, and jobs sent meanwhile are left alone.
    """
    name = check.queue_name(queue)
    chunk = check.integer(chunk, "chunk", 1, 100_000)
    if await db.pool.fetchrow(db.queries.get_queue, name) is None:
        raise NotFound("queue", name)
    last_id = await db.pool.fetchval(db.queries.last_job_id)
    cancelled = 0
    while True:
        rows = await db.pool.fetch(db.queries.waiting_job_ids, name, chunk, last_id)
        ids = [row["id"] for row in rows]
        cancelled += len(await _end_jobs(db, db.queries.cancel_jobs, ids, None, True))
        if len(ids) < chunk:
            return cancelled


async def resume(
    db: Database, job_ids: Iterable[int], *, conn: Conn | None = None,
) -> list[int]:
    """Send failed or cancelled jobs back to waiting, with fresh attempt and crash counts."""
    ids = check.job_ids(job_ids)
    if not ids:
        return []
    try:
        rows = await (conn or db.pool).fetch(db.queries.resume_jobs, ids)
    except asyncpg.UniqueViolationError:
        raise InvalidState(
            f"cannot resume jobs {ids}: a waiting or active job of the same queue now holds "
            "the singleton key of one of them; nothing was resumed") from None
    return [row["id"] for row in rows]


async def delete(
    db: Database, job_ids: Iterable[int], *, conn: Conn | None = None,
) -> list[int]:
    """Delete waiting and finished jobs; active ones must be cancelled first."""
    return await _end_jobs(db, db.queries.delete_jobs, job_ids, conn)


async def _end_jobs(
    db: Database, query: str, job_ids: Iterable[int], conn: Conn | None,
    *args: Any,
) -> list[int]:
    """Run a statement that ends jobs by id, then finish the batches it may have emptied."""
    ids = check.job_ids(job_ids)
    if not ids:
        return []
    ex = conn or db.pool
    rows = await ex.fetch(query, ids, *args)
    await _finish_batches_of(db, ex, rows)
    return [row["id"] for row in rows]


async def _finish_batches_of(db: Database, ex: Executor, rows: Sequence[Any]) -> None:
    batch_ids = sorted({row["batch_id"] for row in rows if row["batch_id"] is not None})
    if batch_ids:
        await finish_batches(db, batch_ids, conn=ex if isinstance(ex, Conn)
                             else None)


async def _explain_missing(
    db: Database, job_id: int, action: str, conn: Conn | None,
) -> None:
    row = await (conn or db.pool).fetchrow(db.queries.get_job, check.job_id(job_id))
    if row is None:
        raise NotFound("job", job_id)
    job = Job.from_record(row)
    raise InvalidState(f"cannot {action} job {job_id}: it is {job.state}, not active"
                       + (f" (held by {job.worker_id})" if job.state == "active" else ""))
