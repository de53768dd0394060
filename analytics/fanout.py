"""The nightly fan-out: one ``collect-analytics`` job per active user-role, under one batch.

Idempotent per night, by a row of ``nightly_runs`` rather than by luck:

    open      insert the night's run if it is new; under its row lock, create the batch
              (completion job: daily-batch-done) unless the run has one already
    chunk     under the row lock: read the cursor, page the next active user-roles by id,
              send their jobs into the batch, advance the cursor — one transaction
    seal      when a page comes back empty: seal the batch, mark the run fanned out

A crash loses at most the chunk in flight, which rolls back with its cursor; the retry
(or a second job for the same night) continues from the cursor; two at once take turns
on the row lock. Once the run is fanned out, another call does nothing. Each job also
carries the singleton key ``<night>:<user-role>``, so that even a bug in the cursor could
not put a second copy of a waiting job in the queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from analytics import user_roles
from shared import queue
from shared.conn import Conn, one
from shared.db import Database

DAILY_QUEUE = "daily-batch"
COLLECT_QUEUE = "collect-analytics"
DONE_QUEUE = "daily-batch-done"

Progress = Callable[[int, int], Awaitable[object]]

# Declared before the first send, so an operator's later change of a queue wins. A
# collection whose every source failed retries twice, after 60 s then 120 s (with
# jitter), then fails; a run is bounded by its sources' timeouts, well under 5 minutes.
# At most COLLECT_FLEET_LIMIT collections run at once in the whole fleet, so no source
# gets more than that many requests at once however many workers run (two workers run
# 100 each by default: the limit binds from the third on).
COLLECT_FLEET_LIMIT = 200
QUEUE_POLICIES = {
    COLLECT_QUEUE: {"retry_limit": 2, "retry_delay_seconds": 60.0, "retry_backoff": True,
                    "run_timeout_seconds": 300.0, "fleet_limit": COLLECT_FLEET_LIMIT},
    DONE_QUEUE: {"retry_limit": 2, "retry_delay_seconds": 60.0, "retry_backoff": True,
                 "run_timeout_seconds": 300.0},
}


@dataclass(frozen=True, slots=True)
class FanOut:
    night: date
    batch_id: int
    sent_now: int       # jobs this call sent
    sent: int           # jobs sent for the night by every call
    already_done: bool  # the night had been fanned out before this call


def night_of(moment: datetime) -> date:
    """The night a fire time belongs to: its date in UTC."""
    return moment.astimezone(UTC).date()


def collect_spec(night: date, user_role_id: int) -> queue.JobSpec:
    return queue.JobSpec.of(
        COLLECT_QUEUE, {"user_role_id": user_role_id, "day": night.isoformat()},
        singleton_key=f"{night.isoformat()}:{user_role_id}")


async def fan_out(
    db: Database, night: date, *, chunk: int, fire_time: datetime | None = None,
    job_id: int | None = None, on_progress: Progress | None = None,
) -> FanOut:
    """Send the night's jobs that are not sent yet (all of them, the rest, or none)."""
    await declare_queues(db)
    async with db.pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute(db.queries.open_nightly_run, night, fire_time, job_id)
            run = one(await conn.fetchrow(db.queries.lock_nightly_run, night))
            batch_id = run["batch_id"]
            if batch_id is None:
                batch_id = await queue.create_batch(
                    db, f"daily-batch {night.isoformat()}", on_complete_queue=DONE_QUEUE,
                    on_complete_data={"night": night.isoformat()}, conn=conn)
                await conn.execute(db.queries.set_nightly_run_batch, night, batch_id)
        if run["fanned_out_at"] is not None:
            return FanOut(night, batch_id, 0, run["sent"], True)
        active = (await user_roles.count(db)).active
        sent_now = 0
        while True:
            async with conn.transaction():
                created, total, done = await _next_chunk(db, conn, night, batch_id, chunk)
            sent_now += created
            if done:
                break
            if on_progress is not None:
                await on_progress(total, max(active, total))
        # After the commit: children that ended meanwhile may have been the last ones.
        await queue.finish_batches(db, [batch_id])
    return FanOut(night, batch_id, sent_now, total, False)


async def declare_queues(db: Database) -> None:
    for name, policy in QUEUE_POLICIES.items():
        await queue.declare_queue(db, name, **policy)


async def _next_chunk(
    db: Database, conn: Conn, night: date, batch_id: int, chunk: int,
) -> tuple[int, int, bool]:
    """Send one chunk, or seal the batch when none is left.

    Returns (jobs sent now, jobs sent for the night, fan-out finished)."""
    run = one(await conn.fetchrow(db.queries.lock_nightly_run, night))
    if run["fanned_out_at"] is not None:  # another run of the night finished it meanwhile
        return 0, run["sent"], True
    rows = await conn.fetch(db.queries.page_active_user_roles, run["last_user_role_id"], chunk)
    if not rows:
        await queue.seal_batch(db, batch_id, conn=conn)
        await conn.execute(db.queries.finish_nightly_fanout, night)
        return 0, run["sent"], True
    ids = [row["id"] for row in rows]
    sent = await queue.send_many(db, [collect_spec(night, i) for i in ids], batch_id=batch_id,
                                 conn=conn)
    created = sum(1 for s in sent if s.created)
    await conn.execute(db.queries.advance_nightly_run, night, ids[-1], created)
    return created, run["sent"] + created, False
