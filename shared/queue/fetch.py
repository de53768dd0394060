"""What a worker does with the hot table: claim jobs, keep them alive, report progress,
extend their deadline, hand them back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from shared.conn import Conn
from shared.db import Database
from shared.queue import validation as check
from shared.queue.errors import InvalidInput, InvalidState, NotFound
from shared.queue.models import Job


async def fetch(
    db: Database, wanted: Mapping[str, int], worker_id: str, *,
    durable: bool = True, conn: Conn | None = None,
) -> list[Job]:
    """Claim up to ``wanted[queue]`` jobs of each queue for ``worker_id``.

    Highest priority first, then oldest start_after, then id; ``FOR UPDATE SKIP LOCKED``
    so that concurrent fetchers never wait for, nor share, a job. Paused queues give
    nothing, and a queue with a fleet-wide limit never has more active jobs than it.

    ``durable=False`` commits the claim without waiting for its WAL flush
    (``synchronous_commit`` off for its transaction; on ``conn``, for the caller's
    transaction): a few tenths of a millisecond sooner, more on a busy disk, but a
    PostgreSQL crash can lose a claim already returned, and the job then runs again.
    """
    names = [check.queue_name(name) for name in wanted]
    counts = [check.integer(n, "limit", 0, 10_000) for n in wanted.values()]
    if not isinstance(worker_id, str) or not worker_id:
        raise InvalidInput("worker_id", "must be a non-empty string")
    query = db.queries.fetch_jobs if durable else db.queries.fetch_jobs_unflushed
    rows = await (conn or db.pool).fetch(query, names, counts, worker_id)
    return Job.from_records(rows)


async def next_start_after(
    db: Database, queues: Iterable[str], *, conn: Conn | None = None,
) -> datetime | None:
    """The earliest start_after of the jobs waiting in ``queues``, or None."""
    names = [check.queue_name(name) for name in queues]
    earliest: datetime | None = await (conn or db.pool).fetchval(
        db.queries.next_start_after, names)
    return earliest


async def heartbeat(
    db: Database, job_ids: Iterable[int], worker_id: str, *,
    conn: Conn | None = None,
) -> set[int]:
    """Mark the worker's active jobs alive; returns those it still holds (the others were
    cancelled, reclaimed or timed out meanwhile)."""
    ids = check.job_ids(job_ids)
    if not ids:
        return set()
    rows = await (conn or db.pool).fetch(db.queries.heartbeat_jobs, ids, worker_id)
    return {row["id"] for row in rows}


async def release(
    db: Database, job_ids: Iterable[int], worker_id: str, *,
    conn: Conn | None = None,
) -> list[int]:
    """Hand active jobs back to the queue without counting the attempt (graceful stop)."""
    ids = check.job_ids(job_ids)
    if not ids:
        return []
    rows = await (conn or db.pool).fetch(db.queries.release_jobs, ids, worker_id)
    return [row["id"] for row in rows]


async def set_progress(
    db: Database, job_id: int, progress: int, message: str | None = None, *,
    worker_id: str | None = None, conn: Conn | None = None,
) -> bool:
    """Record an active job's progress (0-100, optional message); False if it is not active."""
    found = await (conn or db.pool).fetchval(
        db.queries.set_progress, check.job_id(job_id), check.progress(progress),
        check.message(message), worker_id,
    )
    return found is not None


async def extend_deadline(
    db: Database, job_id: int, seconds: float, *, worker_id: str,
    max_run_seconds: float = check.MAX_RUN_TIMEOUT_SECONDS,
    conn: Conn | None = None,
) -> float | None:
    """Give an active job ``seconds`` more from now before its run times out; returns the
    seconds it has left (None when it has no run timeout: nothing to extend).

    The extension is the job's run timeout, counted from the start of the run, grown to
    cover it (never shrunk), so the worker's timer and maintenance's reclaim both honour
    it, and later attempts of the job keep it. A run may not be extended past
    ``max_run_seconds`` from its start (``InvalidInput``), so a handler cannot keep its
    job forever; a job that is not active, or held by another worker, is ``InvalidState``.
    """
    job_id = check.job_id(job_id)
    seconds = check.seconds(seconds, "seconds", 0, check.MAX_RUN_TIMEOUT_SECONDS,
                            low_open=True)
    limit = check.seconds(max_run_seconds, "max_run_seconds", 0,
                          check.MAX_RUN_TIMEOUT_SECONDS, low_open=True)
    ex = conn or db.pool
    row = await ex.fetchrow(db.queries.extend_run_timeout, job_id, worker_id, seconds, limit)
    if row is not None:
        return float(row["seconds_left"])
    found = await ex.fetchrow(db.queries.get_job, job_id)
    if found is None:
        raise NotFound("job", job_id)
    job = Job.from_record(found)
    if job.state != "active" or job.worker_id != worker_id:
        held = f" (held by {job.worker_id})" if job.state == "active" else ""
        raise InvalidState(f"cannot extend the deadline of job {job_id}: it is {job.state}"
                           f"{held}, not active in worker {worker_id}")
    if job.run_timeout_seconds is None:
        return None
    raise InvalidInput("seconds", (
        f"{seconds:g} s more would take job {job_id}'s run past {limit:g} s from its start "
        "(the most a run may be extended to)"))
