"""Firing schedules: claim (schedule, fire time) and send its job in one transaction.

Every scheduler replica wakes up for every fire time and calls ``fire_due``. In one
transaction it share-locks the schedule row, computes the fire time (``shared.cron``),
inserts the firing under the unique key (schedule, fire_time), sends the job on the same
connection and records the job's id on the firing. A second replica's insert waits for
the first one's commit and then inserts nothing, so it sends nothing: each fire time
sends one job, whatever the number of replicas, restarts or duplicate wake-ups. If the
transaction fails, neither the firing nor the job exists, and the fire time is still due.

A fire time is *due* when it is the latest one at or before ``now``, at or after the
schedule's ``armed_at`` (no catch-up of a time the schedule did not have), and no older
than the grace window. An older one is *missed*: it is reported, never sent.

A fired job whose data is an object carries its fire time in ``data["fire_time"]``
(for a manual run, the time of the request), so the job knows which scheduled time it
stands for on every attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.conn import Conn
from shared.db import Database
from shared.queue import validation as check
from shared.queue.errors import InvalidInput, InvalidState, NotFound
from shared.queue.schedules import Firing, Schedule
from shared.queue.send import send

# What fire_due did.
FIRED = "fired"                  # the fire time was claimed here and its job sent
ALREADY_FIRED = "already-fired"  # another replica (or an earlier wake-up) claimed it
NOT_DUE = "not-due"              # no fire time since the schedule was armed
MISSED = "missed"                # the latest fire time is older than the grace window
DISABLED = "disabled"
CHANGED = "changed"              # the expression the caller woke up for is not current
GONE = "gone"                    # the schedule was deleted

# The key under which a fired job's data carries its fire time (RFC 3339), so that the
# job knows which scheduled time it is for, on every attempt: a nightly job knows its
# night even when it runs, or is retried, the next morning.
FIRE_TIME_KEY = "fire_time"


@dataclass(frozen=True, slots=True)
class FiringOutcome:
    schedule: str
    status: str
    fire_time: datetime | None = None
    firing: Firing | None = None


async def fire_due(
    db: Database, name: str, *, now: datetime | None = None, grace_seconds: float = 3600.0,
    kind: str = "scheduled", cron: str | None = None, timezone: str | None = None,
) -> FiringOutcome:
    """Fire the schedule's latest fire time at or before ``now`` if it is due.

    ``kind`` is "scheduled" for a wake-up at a fire time and "catch-up" for the pass made
    on start. ``cron``/``timezone``, when given, are the definition the caller's timer was
    built from: if the schedule has changed since, nothing fires (status "changed").
    """
    if kind not in ("scheduled", "catch-up"):
        raise InvalidInput("kind", f"must be scheduled or catch-up, got {kind!r}")
    now = datetime.now(UTC) if now is None else check.start_after(now)
    grace = timedelta(seconds=check.seconds(grace_seconds, "grace_seconds", 0, 366 * 86400))
    check.queue_name(name, "name")
    async with db.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(db.queries.lock_schedule_for_firing, name)
        if row is None:
            return FiringOutcome(name, GONE)
        schedule = Schedule.from_record(row)
        if not schedule.enabled:
            return FiringOutcome(name, DISABLED)
        if cron is not None and (schedule.cron, schedule.timezone) != (cron, timezone):
            return FiringOutcome(name, CHANGED)
        fire_time = schedule.timing.latest_at_or_before(now, not_before=schedule.armed_at)
        if fire_time is None:
            return FiringOutcome(name, NOT_DUE)
        if now - fire_time > grace:
            existing = await conn.fetchrow(db.queries.get_firing, name, fire_time)
            if existing is not None:
                return FiringOutcome(name, ALREADY_FIRED, fire_time, Firing.from_record(existing))
            return FiringOutcome(name, MISSED, fire_time)
        return await _fire(db, conn, schedule, fire_time, kind)


async def run_now(db: Database, name: str) -> Firing:
    """Send the schedule's job now, recorded as a manual firing (enabled or not)."""
    check.queue_name(name, "name")
    async with db.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(db.queries.lock_schedule_for_firing, name)
        if row is None:
            raise NotFound("schedule", name)
        outcome = await _fire(db, conn, Schedule.from_record(row), None, "manual")
    if outcome.status != FIRED or outcome.firing is None:
        raise InvalidState(f"schedule {name!r} fired at this very instant already: try again")
    return outcome.firing


async def prune_firings(db: Database, older_than: datetime, limit: int = 5000) -> int:
    """Delete firings older than ``older_than`` (keeping each schedule's latest one)."""
    rows = await db.pool.fetch(
        db.queries.prune_firings, check.start_after(older_than),
        check.integer(limit, "limit", 1, 100_000))
    return len(rows)


def with_fire_time(data: Any, fire_time: datetime) -> Any:
    """The job's data: the schedule's, with the firing's fire time when it is an object."""
    if not isinstance(data, dict):
        return data
    return {**data, FIRE_TIME_KEY: fire_time.isoformat()}


async def _fire(
    db: Database, conn: Conn, schedule: Schedule, fire_time: datetime | None,
    kind: str,
) -> FiringOutcome:
    claimed = await conn.fetchrow(db.queries.insert_firing, schedule.name, fire_time, kind)
    if claimed is None:
        # The insert waited for the claim that beat it; this statement sees it committed.
        existing = await conn.fetchrow(db.queries.get_firing, schedule.name, fire_time)
        firing = None if existing is None else Firing.from_record(existing)
        return FiringOutcome(schedule.name, ALREADY_FIRED, fire_time, firing)
    data = with_fire_time(schedule.data, claimed["fire_time"])
    sent = await send(db, schedule.queue, data, conn=conn, **schedule.options)
    row = await conn.fetchrow(db.queries.set_firing_job, claimed["id"], sent.id, sent.created)
    firing = Firing.from_record(row)
    return FiringOutcome(schedule.name, FIRED, firing.fire_time, firing)
