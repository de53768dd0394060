"""Sending jobs: one, or many in one statement.

Both take the caller's connection when given one, so a job can be part of the caller's
transaction: it exists, and wakes a worker, only if that transaction commits (the
wake-up NOTIFY is delivered at commit). A queue that does not exist yet is created with
the default policy on first use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from shared.conn import Conn, one
from shared.db import Database
from shared.queue import validation as check
from shared.queue.errors import InvalidInput, NotFound, QueueError
from shared.queue.models import Sent

Executor = Conn | asyncpg.Pool
# From this many jobs without singleton keys, send_many inserts by COPY.
COPY_MIN_JOBS = 500
_COPY_COLUMNS = (
    "id", "queue", "data", "priority", "start_after", "retry_limit", "retry_delay_seconds",
    "retry_backoff", "retry_delay_max_seconds", "run_timeout_seconds", "batch_id",
)
# ``send_plain``'s COPY, in text: a row is its id, data and priority, then its queue's
# name and defaults as one string per queue, about 40 bytes where the binary rows of
# ``_copy_many`` take 120 (on a local socket, writing them cost more CPU than building
# them). Jobs that start now and belong to no batch leave start_after and batch_id to the
# columns' defaults: now(), the transaction's clock as in ``_copy_many``'s rows, and NULL.
_PLAIN_COLUMNS = ("id", "data", "priority", "queue", "retry_limit", "retry_delay_seconds",
                  "retry_backoff", "retry_delay_max_seconds", "run_timeout_seconds")
_BACKSLASH, _ESCAPED = "\\", "\\\\"  # COPY text's one escape JSON text can need
_POLICY_COLUMNS = ("retry_limit", "retry_delay_seconds", "retry_backoff",
                   "retry_delay_max_seconds", "run_timeout_seconds")
_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job to send, validated. Options left None take the queue's policy."""

    queue: str
    data_json: str
    priority: int = 0
    start_after: datetime | None = None
    delay: float = 0.0
    retry_limit: int | None = None
    retry_delay: float | None = None
    retry_backoff: bool | None = None
    retry_delay_max: float | None = None
    run_timeout: float | None = None
    singleton_key: str | None = None

    @classmethod
    def of(
        cls, queue: str, data: Any = None, *, priority: int = 0,
        start_after: datetime | None = None, delay: float | None = None,
        retry_limit: int | None = None, retry_delay: float | None = None,
        retry_backoff: bool | None = None, retry_delay_max: float | None = None,
        run_timeout: float | None = None, singleton_key: str | None = None,
    ) -> JobSpec:
        if start_after is not None and delay is not None:
            raise InvalidInput("start_after", "give start_after or delay, not both")
        if retry_backoff is not None and not isinstance(retry_backoff, bool):
            raise InvalidInput("retry_backoff", f"must be true or false, got {retry_backoff!r}")
        # Options left out are the common case of a fan-out of thousands: check only those
        # given (a few microseconds per job add up to a tenth of a second per 30,000).
        return cls(
            check.queue_name(queue),
            check.json_text({} if data is None else data),
            0 if type(priority) is int and priority == 0 else check.priority(priority),
            None if start_after is None else check.start_after(start_after),
            0.0 if delay is None else check.delay(delay),
            None if retry_limit is None else check.retry_limit(retry_limit),
            None if retry_delay is None else check.retry_delay(retry_delay),
            retry_backoff,
            None if retry_delay_max is None else check.retry_delay(
                retry_delay_max, "retry_delay_max"),
            None if run_timeout is None else check.run_timeout(run_timeout),
            None if singleton_key is None else check.singleton_key(singleton_key),
        )

    @classmethod
    def plain(cls, queue: str, data_json: str, priority: int = 0) -> JobSpec:
        """A job whose every option is its queue's policy, from values already checked as
        ``of`` checks them (a queue name, JSON text within the size limit, a priority in
        range): for a front end that validated a whole request of thousands at once. The
        slots are filled directly, as ``__init__`` would fill them, for a fraction of its
        cost."""
        spec = _new_spec(cls)
        _queue(spec, queue)
        _data(spec, data_json)
        _priority(spec, priority)
        # The other fields' defaults, one call each (a loop costs as much as __init__).
        _start_after(spec, None)
        _delay(spec, 0.0)
        _retry_limit(spec, None)
        _retry_delay(spec, None)
        _retry_backoff(spec, None)
        _retry_delay_max(spec, None)
        _run_timeout(spec, None)
        _singleton_key(spec, None)
        return spec


_new_spec = object.__new__
# The slots' descriptors in field order (frozen: no setattr), named by position for
# ``plain``: the import fails if the fields ever change.
if [f.name for f in fields(JobSpec)] != [
        "queue", "data_json", "priority", "start_after", "delay", "retry_limit", "retry_delay",
        "retry_backoff", "retry_delay_max", "run_timeout", "singleton_key"]:
    raise ImportError("JobSpec's fields changed: update JobSpec.plain")
(_queue, _data, _priority, _start_after, _delay, _retry_limit, _retry_delay, _retry_backoff,
 _retry_delay_max, _run_timeout, _singleton_key) = (
    getattr(JobSpec, f.name).__set__ for f in fields(JobSpec))


@dataclass(frozen=True, slots=True)
class PlainJobs:
    """Many jobs whose every option is their queue's policy, as parallel lists (job i is
    ``queues[i]``, ``data_json[i]``, ``priorities[i]``), from values already checked as
    ``JobSpec.of`` checks them: for a front end that validated a request of thousands at
    once. No object per job: building a ``JobSpec`` costs more than the rest of a job's
    way to the database."""

    queues: list[str]
    data_json: list[str]
    priorities: list[int]

    def specs(self) -> list[JobSpec]:
        """The same jobs as ``JobSpec`` values."""
        plain = JobSpec.plain
        return [plain(queue, data, priority) for queue, data, priority in zip(
            self.queues, self.data_json, self.priorities, strict=True)]


# The options of a send (``JobSpec.of``'s keywords), named once: front ends take them
# from here. A schedule's jobs take all but the two that say when to start (a firing
# starts its job now).
SEND_OPTIONS: tuple[str, ...] = tuple(
    name for name in JobSpec.__dataclass_fields__ if name not in ("queue", "data_json"))
WHEN_OPTIONS = ("start_after", "delay")
SCHEDULE_JOB_OPTIONS: tuple[str, ...] = tuple(
    name for name in SEND_OPTIONS if name not in WHEN_OPTIONS)


async def send(
    db: Database, queue: str, data: Any = None, *, batch_id: int | None = None,
    conn: Conn | None = None, **options: Any,
) -> Sent:
    """Send one job; with a singleton key already held, return the holder (created=False)."""
    spec = JobSpec.of(queue, data, **options)
    batch_id = check.optional(batch_id, lambda v: check.job_id(v, "batch_id"))
    if batch_id is None:
        return await _send_one(db, conn or db.pool, spec, None)
    async with db.transaction(conn) as tx:
        return await _send_into_batch(db, tx, spec, batch_id)


async def send_spec(
    db: Database, spec: JobSpec, *, conn: Conn | None = None,
) -> Sent:
    """Send one job already validated as a ``JobSpec``."""
    return await _send_one(db, conn or db.pool, spec, None)


async def _send_into_batch(
    db: Database, conn: Conn, spec: JobSpec, batch_id: int,
) -> Sent:
    sent = await _send_one(db, conn, spec, batch_id)
    if sent.created:
        await _grow_batch(db, conn, batch_id, 1)
    return sent


async def _send_one(db: Database, ex: Executor, spec: JobSpec, batch_id: int | None) -> Sent:
    for _ in range(_ATTEMPTS):
        job_id = await ex.fetchval(
            db.queries.send_job, spec.queue, spec.data_json, spec.priority, spec.start_after,
            spec.delay, spec.retry_limit, spec.retry_delay, spec.retry_backoff,
            spec.retry_delay_max, spec.run_timeout, spec.singleton_key, batch_id,
        )
        if job_id is not None:
            return Sent(job_id, True)
        existing, queue_exists = one(await ex.fetchrow(
            db.queries.send_conflict, spec.queue, spec.singleton_key))
        if existing is not None:
            return Sent(existing, False)
        if not queue_exists:
            await ex.execute(db.queries.ensure_queues, [spec.queue])
        # Otherwise the key's holder ended between the two statements: try again.
    raise QueueError(f"could not send a job to queue {spec.queue!r} after {_ATTEMPTS} tries")


async def send_many(
    db: Database, jobs: Sequence[JobSpec], *, batch_id: int | None = None,
    conn: Conn | None = None,
) -> list[Sent]:
    """Send many jobs in one INSERT; results are in input order."""
    if not jobs:
        return []
    if not all(isinstance(job, JobSpec) for job in jobs):
        raise InvalidInput("jobs", "must be JobSpec values (build them with JobSpec.of)")
    batch_id = check.optional(batch_id, lambda v: check.job_id(v, "batch_id"))
    async with db.transaction(conn) as tx:
        return await _send_many(db, tx, jobs, batch_id)


async def send_plain(db: Database, jobs: PlainJobs, *, conn: Conn | None = None) -> list[int]:
    """Send many jobs of their queues' policies (``send_many`` of ``jobs.specs()``, for
    less CPU per job); the new jobs' ids in input order. Without singleton keys every job
    is created."""
    count = len(jobs.queues)
    if not count:
        return []
    if count < COPY_MIN_JOBS:
        return [sent.id for sent in await send_many(db, jobs.specs(), conn=conn)]
    queues = list(set(jobs.queues))
    async with db.transaction(conn) as tx:
        row = one(await tx.fetchrow(db.queries.prepare_plain_copy, queues, count))
        ids: list[int] = row["ids"]
        defaults = dict(zip(row["names"] or [], zip(
            row["retry_limits"] or [], row["retry_delays"] or [], row["backoffs"] or [],
            row["retry_delay_maxes"] or [], row["run_timeouts"] or [], strict=True),
            strict=True))
        if len(defaults) < len(queues):  # created by a concurrent send meanwhile
            policies = await tx.fetch(db.queries.queue_policies, queues)
            defaults = {r["name"]: tuple(r[c] for c in _POLICY_COLUMNS) for r in policies}
        # Each queue's name and defaults, the end of each of its rows.
        ends = {queue: "".join(f"\t{_copy_text(v)}" for v in (queue, *values)) + "\n"
                for queue, values in defaults.items()}
        await tx.copy_to_table(
            "jobs", schema_name=db.schema, columns=_PLAIN_COLUMNS,
            source=_once(_copy_rows(ids, jobs, ends)), format="text")
    return ids


async def _send_many(
    db: Database, conn: Conn, jobs: Sequence[JobSpec], batch_id: int | None,
) -> list[Sent]:
    await conn.execute(db.queries.ensure_queues, list({job.queue for job in jobs}))
    if len(jobs) >= COPY_MIN_JOBS and all(job.singleton_key is None for job in jobs):
        results = await _copy_many(db, conn, jobs, batch_id)
        if batch_id is not None:
            await _grow_batch(db, conn, batch_id, len(results))
        return results
    results = await _insert_many(db, conn, jobs, batch_id)
    duplicates = [i for i, sent in enumerate(results) if not sent.created]
    if duplicates:
        results = await _resolve_duplicates(db, conn, jobs, results, duplicates, batch_id)
    created = sum(1 for sent in results if sent.created)
    if batch_id is not None and created:
        await _grow_batch(db, conn, batch_id, created)
    return results


async def _insert_many(
    db: Database, ex: Executor, jobs: Sequence[JobSpec], batch_id: int | None,
) -> list[Sent]:
    """The one INSERT of ``send_jobs``: created=False where the singleton key is held, or
    where the queue does not exist."""
    row = one(await ex.fetchrow(
        db.queries.send_jobs,
        [j.queue for j in jobs], [j.data_json for j in jobs], [j.priority for j in jobs],
        _unless_all_none([j.start_after for j in jobs]), [j.delay for j in jobs],
        _unless_all_none([j.retry_limit for j in jobs]),
        _unless_all_none([j.retry_delay for j in jobs]),
        _unless_all_none([j.retry_backoff for j in jobs]),
        _unless_all_none([j.retry_delay_max for j in jobs]),
        _unless_all_none([j.run_timeout for j in jobs]),
        _unless_all_none([j.singleton_key for j in jobs]), batch_id,
    ))
    return [Sent(job_id, inserted)
            for job_id, inserted in zip(row["ids"], row["inserted"], strict=True)]


async def send_each(db: Database, jobs: Sequence[JobSpec]) -> list[Sent | Exception]:
    """Send many jobs, each for its own caller: not all or nothing, so the common case is
    one statement committed on its own (one round trip, where ``send_many``'s transaction
    takes four). The jobs it could not insert (a queue that does not exist yet, a
    singleton key held) then go through ``send_many``; if that fails, it raises when none
    was sent, and otherwise its jobs get the error in their place of the result."""
    if not jobs:
        return []
    results: list[Sent | Exception] = list(await _insert_many(db, db.pool, jobs, None))
    rest = [i for i, sent in enumerate(results) if isinstance(sent, Sent) and not sent.created]
    if rest:
        try:
            retried: Sequence[Sent | Exception] = await send_many(db, [jobs[i] for i in rest])
        except Exception as error:
            if len(rest) == len(jobs):  # nothing sent: the error is all of theirs
                raise
            retried = [error] * len(rest)
        for i, sent in zip(rest, retried, strict=True):
            results[i] = sent
    return results


async def _copy_many(
    db: Database, conn: Conn, jobs: Sequence[JobSpec], batch_id: int | None,
) -> list[Sent]:
    """Insert by binary COPY: about twice as fast as the INSERT for thousands of jobs.

    COPY cannot skip rows on a singleton conflict, so only jobs without a key come here;
    the queue's defaults are filled in client-side from one read of the policies, and the
    statement-level insert trigger still sends one wake-up per queue."""
    defaults, ids, now = await _reserve(db, conn, list({j.queue for j in jobs}), len(jobs))
    records = []
    for job_id, job in zip(ids, jobs, strict=True):
        limit, delay, backoff, delay_max, timeout = defaults[job.queue]
        records.append((
            job_id, job.queue, job.data_json, job.priority,
            job.start_after or (now + timedelta(seconds=job.delay) if job.delay else now),
            limit if job.retry_limit is None else job.retry_limit,
            delay if job.retry_delay is None else job.retry_delay,
            backoff if job.retry_backoff is None else job.retry_backoff,
            delay_max if job.retry_delay_max is None else job.retry_delay_max,
            timeout if job.run_timeout is None else job.run_timeout,
            batch_id,
        ))
    await conn.copy_records_to_table(
        "jobs", schema_name=db.schema, columns=_COPY_COLUMNS, records=records)
    return [Sent(job_id, True) for job_id in ids]


async def _reserve(
    db: Database, conn: Conn, queues: list[str], count: int,
) -> tuple[dict[str, tuple[Any, ...]], list[int], datetime]:
    """For a COPY of ``count`` jobs to ``queues`` (which exist): each queue's defaults as
    a tuple in ``_POLICY_COLUMNS`` order (a record's field by key costs more than the rest
    of a job's row), ``count`` job ids drawn in order, and the transaction's clock."""
    policies = await conn.fetch(db.queries.queue_policies, queues)
    defaults = {row["name"]: tuple(row[c] for c in _POLICY_COLUMNS) for row in policies}
    reserved = one(await conn.fetchrow(db.queries.reserve_job_ids, count))
    return defaults, reserved["ids"], reserved["now"]


def _copy_rows(ids: list[int], jobs: PlainJobs, ends: dict[str, str]) -> bytes:
    """``send_plain``'s rows as COPY text. JSON text as the core writes it has no raw tab,
    newline or carriage return (inside strings they are escapes, so backslashes), and
    then a backslash is the one character to escape; other JSON text goes the slow way."""
    fields = zip(ids, jobs.queues, jobs.data_json, jobs.priorities, strict=True)
    rows = "".join([f"{job_id}\t{data.replace(_BACKSLASH, _ESCAPED)}\t{priority}{ends[queue]}"
                    for job_id, queue, data, priority in fields])
    tabs = (len(_PLAIN_COLUMNS) - 1) * len(ids)
    if rows.count("\n") != len(ids) or rows.count("\t") != tabs or "\r" in rows:
        fields = zip(ids, jobs.queues, jobs.data_json, jobs.priorities, strict=True)
        rows = "".join([f"{job_id}\t{_escaped(data)}\t{priority}{ends[queue]}"
                        for job_id, queue, data, priority in fields])
    return rows.encode()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    """``data`` as the async iterable COPY reads (bytes alone would be taken for a path)."""
    yield data


def _escaped(text: str) -> str:
    return (text.replace(_BACKSLASH, _ESCAPED).replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def _copy_text(value: Any) -> str:
    """A queue's name or policy value as COPY text (none of them needs an escape)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    return repr(value) if isinstance(value, float) else str(value)


def _unless_all_none(values: list[Any]) -> list[Any] | None:
    """An option array with no value set goes as NULL: ``unnest`` of several arrays pads
    the missing one with NULLs, and the server is spared decoding one NULL per job."""
    return None if all(value is None for value in values) else values


async def _resolve_duplicates(
    db: Database, conn: Conn, jobs: Sequence[JobSpec], results: list[Sent],
    duplicates: list[int], batch_id: int | None,
) -> list[Sent]:
    """Point each job skipped for its singleton key at the job that holds the key."""
    keys = [(jobs[i].queue, jobs[i].singleton_key) for i in duplicates]
    rows = await conn.fetch(
        db.queries.singleton_holders, [k[0] for k in keys], [k[1] for k in keys])
    holders = {(r["queue"], r["singleton_key"]): r["id"] for r in rows}
    results = list(results)
    for i in duplicates:
        holder = holders.get((jobs[i].queue, jobs[i].singleton_key))
        if holder is None:  # the holder ended meanwhile: this job may go in after all
            holder_sent = await _send_one(db, conn, jobs[i], batch_id)
            results[i] = holder_sent
        else:
            # The same key twice in one call: the first occurrence was inserted.
            results[i] = Sent(holder, False)
    return results


async def _grow_batch(db: Database, conn: Conn, batch_id: int, count: int) -> None:
    if await conn.fetchval(db.queries.grow_batch, batch_id, count) is None:
        raise NotFound("open batch", batch_id)
