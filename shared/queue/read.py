"""Reading jobs: one by id, pages of them, and counts per queue and state."""

from __future__ import annotations

from collections.abc import Iterable

from shared.conn import Conn
from shared.db import Database
from shared.queue import validation as check
from shared.queue.errors import NotFound
from shared.queue.models import Job


async def get_job(db: Database, job_id: int, *, conn: Conn | None = None) -> Job:
    row = await (conn or db.pool).fetchrow(db.queries.get_job, check.job_id(job_id))
    if row is None:
        raise NotFound("job", job_id)
    return Job.from_record(row)


async def list_jobs(
    db: Database, *, queue: str | None = None, states: Iterable[str] | None = None,
    before_id: int | None = None, limit: int = 50,
) -> list[Job]:
    """Jobs newest first. Pass the last id of a page as ``before_id`` to get the next one."""
    rows = await db.pool.fetch(
        db.queries.list_jobs,
        check.optional(queue, check.queue_name),
        check.states(states),
        check.optional(before_id, lambda v: check.job_id(v, "before_id")),
        check.page_size(limit),
    )
    return [Job.from_record(row) for row in rows]


async def count_jobs(db: Database) -> dict[str, dict[str, int]]:
    """{queue: {state: n}} for every queue with jobs (finished ones included)."""
    counts: dict[str, dict[str, int]] = {}
    for row in await db.pool.fetch(db.queries.count_jobs):
        counts.setdefault(row["queue"], {})[row["state"]] = row["n"]
    return counts
