"""Schedules: a cron expression in a time zone that sends a job to a queue at each fire time.

A schedule is checked whole before anything is written — its expression and time zone by
``shared.cron``, its name, queue, data and job options as a send would check them — so a
bad one is refused with the field named and nothing saved. Saving a schedule whose queue
does not exist creates that queue with the default policy (as sending a job would).
Every change NOTIFYs ``<schema>.schedules`` (a trigger on the table), and the scheduler
reloads that schedule without a restart. Firing schedules is ``firings.py``'s business.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from shared.conn import Conn
from shared.cron import CronError, CronExpression, CronSchedule, load_timezone
from shared.db import Database
from shared.queue import validation as check
from shared.queue.errors import InvalidInput, InvalidState, NotFound
from shared.queue.send import SCHEDULE_JOB_OPTIONS, JobSpec

_CHANGEABLE = ("cron", "timezone", "queue", "data", "options", "enabled")


@dataclass(frozen=True, slots=True)
class Firing:
    """One fire time of a schedule, recorded once, and the job it sent."""

    id: int
    schedule: str
    fire_time: datetime
    kind: str
    job_id: int | None
    job_created: bool | None
    fired_at: datetime

    @classmethod
    def from_record(cls, row: Any, prefix: str = "") -> Firing:
        return cls(
            id=row[f"{prefix}id"], schedule=row["schedule" if not prefix else "name"],
            fire_time=row[f"{prefix}fire_time"], kind=row[f"{prefix}kind"],
            job_id=row[f"{prefix}job_id"], job_created=row[f"{prefix}job_created"],
            fired_at=row[f"{prefix}fired_at"],
        )


@lru_cache(maxsize=1024)
def cron_schedule(cron: str, timezone: str) -> CronSchedule:
    """The parsed (cron, timezone) pair; parsing is cached since schedules rarely change."""
    return CronSchedule.of(cron, timezone)


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    cron: str
    timezone: str
    queue: str
    data: Any
    options: dict[str, Any]
    enabled: bool
    armed_at: datetime
    created_at: datetime
    updated_at: datetime
    last_firing: Firing | None = None

    @classmethod
    def from_record(cls, row: Any) -> Schedule:
        last = None
        if "firing_id" in row.keys() and row["firing_id"] is not None:
            last = Firing.from_record(row, prefix="firing_")
        return cls(
            name=row["name"], cron=row["cron"], timezone=row["timezone"], queue=row["queue"],
            data=orjson.loads(row["data"]), options=orjson.loads(row["options"]),
            enabled=row["enabled"], armed_at=row["armed_at"], created_at=row["created_at"],
            updated_at=row["updated_at"], last_firing=last,
        )

    @property
    def timing(self) -> CronSchedule:
        return cron_schedule(self.cron, self.timezone)

    def next_fire(self, now: datetime | None = None) -> datetime | None:
        """The next fire time after ``now``; None while disabled."""
        if not self.enabled:
            return None
        now = now or datetime.now(UTC)
        return self.timing.next_after(max(now, self.armed_at - timedelta(microseconds=1)))


@dataclass(frozen=True, slots=True)
class _Checked:
    name: str
    cron: str
    timezone: str
    queue: str
    data_json: str
    options_json: str
    enabled: bool


def check_definition(
    name: Any, cron: Any, timezone: Any, queue: Any, data: Any, options: Any, enabled: Any,
) -> _Checked:
    """Validate a whole schedule; raises InvalidInput naming the first bad field."""
    check.queue_name(name, "name")
    try:
        expression = CronExpression.parse(cron)
    except CronError as error:
        raise InvalidInput("cron", str(error)) from None
    try:
        load_timezone(timezone)
    except CronError as error:
        raise InvalidInput("timezone", str(error)) from None
    check.queue_name(queue)
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidInput("options", f"must be an object of job options, got {options!r}")
    unknown = sorted(set(options) - set(SCHEDULE_JOB_OPTIONS))
    if unknown:
        raise InvalidInput(
            "options", f"{unknown[0]!r} is not a job option "
                       f"(known: {', '.join(SCHEDULE_JOB_OPTIONS)})")
    JobSpec.of(queue, data, **options)  # the checks a send would make, field by field
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled", f"must be true or false, got {enabled!r}")
    return _Checked(
        name=name, cron=expression.text, timezone=timezone, queue=queue,
        data_json=check.json_text({} if data is None else data),
        options_json=check.json_text(options, "options"), enabled=enabled,
    )


async def create_schedule(
    db: Database, name: str, cron: str, *, queue: str, timezone: str = "UTC",
    data: Any = None, options: dict[str, Any] | None = None, enabled: bool = True,
) -> Schedule:
    """Create a schedule (and its queue, if new); InvalidState if the name is taken."""
    c = check_definition(name, cron, timezone, queue, data, options, enabled)
    async with db.pool.acquire() as conn, conn.transaction():
        await conn.execute(db.queries.ensure_queues, [c.queue])
        row = await conn.fetchrow(
            db.queries.insert_schedule, c.name, c.cron, c.timezone, c.queue, c.data_json,
            c.options_json, c.enabled)
        if row is None:
            raise InvalidState(f"a schedule named {name!r} already exists")
    return Schedule.from_record(row)


async def update_schedule(db: Database, name: str, **changes: Any) -> Schedule:
    """Change some of cron, timezone, queue, data, options (replaced whole) and enabled."""
    unknown = sorted(set(changes) - set(_CHANGEABLE))
    if unknown:
        raise InvalidInput(
            unknown[0], f"is not a schedule setting (known: {', '.join(_CHANGEABLE)})")
    check.queue_name(name, "name")
    async with db.pool.acquire() as conn, conn.transaction():
        current = await _locked(db, conn, name)
        wanted = replace(current, **changes)
        c = check_definition(name, wanted.cron, wanted.timezone, wanted.queue, wanted.data,
                             wanted.options, wanted.enabled)
        if "queue" in changes:
            await conn.execute(db.queries.ensure_queues, [c.queue])
        row = await conn.fetchrow(
            db.queries.update_schedule, c.name, c.cron, c.timezone, c.queue, c.data_json,
            c.options_json, c.enabled)
    return Schedule.from_record(row)


async def enable_schedule(db: Database, name: str) -> Schedule:
    """Enable a schedule; fire times from now on are due (none from before)."""
    return await update_schedule(db, name, enabled=True)


async def disable_schedule(db: Database, name: str) -> Schedule:
    return await update_schedule(db, name, enabled=False)


async def delete_schedule(db: Database, name: str) -> None:
    """Delete a schedule and its firings (jobs it sent are left alone)."""
    if await db.pool.fetchval(db.queries.delete_schedule, check.queue_name(name, "name")) is None:
        raise NotFound("schedule", name)


async def get_schedule(db: Database, name: str) -> Schedule:
    """One schedule, with its last firing."""
    rows = await db.pool.fetch(db.queries.list_schedules, check.queue_name(name, "name"))
    if not rows:
        raise NotFound("schedule", name)
    return Schedule.from_record(rows[0])


async def list_schedules(db: Database) -> list[Schedule]:
    """Every schedule by name, each with its last firing (``next_fire()`` gives the next)."""
    return [Schedule.from_record(row) for row in await db.pool.fetch(db.queries.list_schedules,
                                                                     None)]


async def list_firings(
    db: Database, name: str, *, before: datetime | None = None, limit: int = 50,
) -> list[Firing]:
    """Firings of a schedule, latest first; pass the last fire time of a page as ``before``."""
    rows = await db.pool.fetch(
        db.queries.list_firings, check.queue_name(name, "name"),
        check.optional(before, check.start_after), check.page_size(limit))
    return [Firing.from_record(row) for row in rows]


async def _locked(db: Database, conn: Conn, name: str) -> Schedule:
    row = await conn.fetchrow(db.queries.get_schedule_for_update, name)
    if row is None:
        raise NotFound("schedule", name)
    return Schedule.from_record(row)
