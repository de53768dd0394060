"""Batches: many jobs under one record that knows when the last of them has ended.

Totals are never counters that every child updates (30,000 children would queue up on
one row): while a batch runs they are counted from its children through the batch index,
and when it finishes they are frozen into the batch row.

Finishing is exactly-once without a lock per child. After the statement that ended some
children has committed, ``finish_batches`` marks each of their batches finished when no
child is waiting or active any more, guarded by ``finished_at IS NULL``, and enqueues the
completion job in the same statement. Of two children ending at once, the one committing
last always sees the other gone, so the batch cannot be missed; if a process dies
between its commit and the check, maintenance re-checks unfinished batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.conn import Conn, one
from shared.db import Database
from shared.queue import validation as check
from shared.queue.errors import InvalidInput, NotFound
from shared.queue.models import Batch, Sent
from shared.queue.send import JobSpec, send_many


async def create_batch(
    db: Database, name: str = "", *, on_complete_queue: str | None = None,
    on_complete_data: Any = None, conn: Conn | None = None,
) -> int:
    """Open a batch to be filled (``send_many(..., batch_id=)``) and then sealed."""
    if not isinstance(name, str) or len(name) > 200:
        raise InvalidInput("name", "must be a string of at most 200 characters")
    if on_complete_queue is not None:
        check.queue_name(on_complete_queue, "on_complete_queue")
    elif on_complete_data is not None:
        raise InvalidInput("on_complete_data", "needs on_complete_queue")
    data = None if on_complete_data is None else check.json_text(
        on_complete_data, "on_complete_data")
    ex = conn or db.pool
    if on_complete_queue is not None:
        await ex.execute(db.queries.ensure_queues, [on_complete_queue])
    row = one(await ex.fetchrow(db.queries.insert_batch, name, on_complete_queue, data))
    return int(row["id"])


async def seal_batch(
    db: Database, batch_id: int, *, conn: Conn | None = None,
) -> None:
    """Close a batch to new children; it finishes when its last child ends (maybe now)."""
    ex = conn or db.pool
    if await ex.fetchval(db.queries.seal_batch, check.job_id(batch_id, "batch_id")) is None:
        raise NotFound("batch", batch_id)
    await finish_batches(db, [batch_id], conn=conn)


async def send_batch(
    db: Database, jobs: Sequence[JobSpec], name: str = "", *,
    on_complete_queue: str | None = None, on_complete_data: Any = None,
    conn: Conn | None = None,
) -> tuple[int, list[Sent]]:
    """Create, fill and seal a batch in one transaction; returns its id and the sends.

    With ``conn``, in the caller's transaction, which must then call ``finish_batches``
    after its commit: children that other workers ended meanwhile may have been the
    last ones, and only a check after the commit sees them (see the module doc)."""
    if conn is not None:
        return await _fill_batch(db, conn, jobs, name, on_complete_queue, on_complete_data)
    async with db.pool.acquire() as own:
        async with own.transaction():
            batch_id, sent = await _fill_batch(
                db, own, jobs, name, on_complete_queue, on_complete_data)
        await finish_batches(db, [batch_id], conn=own)
    return batch_id, sent


async def _fill_batch(
    db: Database, conn: Conn, jobs: Sequence[JobSpec], name: str,
    on_complete_queue: str | None, on_complete_data: Any,
) -> tuple[int, list[Sent]]:
    batch_id = await create_batch(db, name, on_complete_queue=on_complete_queue,
                                  on_complete_data=on_complete_data, conn=conn)
    sent = await send_many(db, jobs, batch_id=batch_id, conn=conn) if jobs else []
    await conn.fetchval(db.queries.seal_batch, batch_id)
    return batch_id, sent


async def finish_batches(
    db: Database, batch_ids: Sequence[int], *, conn: Conn | None = None,
) -> list[int]:
    """Finish those of the batches whose children have all ended; returns their ids."""
    if not batch_ids:
        return []
    rows = await (conn or db.pool).fetch(db.queries.finish_batches, list(batch_ids))
    return [row["id"] for row in rows]


async def finish_pending_batches(
    db: Database, limit: int = 1000, *, conn: Conn | None = None,
) -> list[int]:
    """The maintenance safety net: re-check sealed batches that are not finished."""
    rows = await (conn or db.pool).fetch(db.queries.unfinished_batch_ids, limit)
    return await finish_batches(db, [row["id"] for row in rows], conn=conn)


async def get_batch(db: Database, batch_id: int) -> Batch:
    row = await db.pool.fetchrow(db.queries.get_batch, check.job_id(batch_id, "batch_id"))
    if row is None:
        raise NotFound("batch", batch_id)
    return Batch.from_record(row)


async def list_batches(
    db: Database, *, before_id: int | None = None, limit: int = 50,
) -> list[Batch]:
    """Batches newest first, before ``before_id``, each with its totals: frozen for a
    finished batch, counted from its children for a running one."""
    rows = await db.pool.fetch(
        db.queries.list_batches, check.optional(before_id, check.job_id), check.page_size(limit))
    listed = [Batch.from_record(row) for row in rows]
    return [b if b.finished_at is not None else await get_batch(db, b.id) for b in listed]
