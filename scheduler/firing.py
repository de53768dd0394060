"""Firing from the scheduler's side: a wake-up at a fire time, and the catch-up pass.

Both end in the core's ``fire_due``, which claims (schedule, fire time) and sends the job
in one transaction; this module bounds each call in time, logs what happened in words an
operator can act on, and tells the caller when the database was unreachable so that a
catch-up pass follows once it is back (the fire time is then still due, within grace).

A missed fire time (older than the grace window, never fired) is logged once per
process, not at every catch-up pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime

import asyncpg

from shared import queue
from shared.db import Database, is_connection_error
from shared.logging import get_logger, mask_secrets
from shared.queue import FIRED, MISSED, FiringOutcome, Schedule

log = get_logger("scheduler.firing")

Clock = Callable[[], datetime]


class Firer:
    """Fires schedules for one scheduler process."""

    def __init__(
        self, db: Database, *, clock: Clock, grace_seconds: float, timeout_seconds: float,
    ) -> None:
        self._db = db
        self._clock = clock
        self._grace = grace_seconds
        self._timeout = timeout_seconds
        self._reported_missed: set[tuple[str, datetime]] = set()

    async def on_time(self, name: str, cron: str, timezone: str) -> FiringOutcome | None:
        """A wake-up for schedule ``name`` as defined by (cron, timezone).

        Returns None when the database could not be reached (the caller should catch up
        later); any other failure is logged and also returns None.
        """
        return await self._fire(name, "scheduled", cron, timezone)

    async def catch_up(self, schedules: Iterable[Schedule]) -> list[FiringOutcome]:
        """Fire every enabled schedule's latest fire time that is due and not yet fired.

        Raises on a database error, so that the caller retries the whole pass."""
        outcomes = []
        for schedule in schedules:
            if not schedule.enabled:
                continue
            outcome = await asyncio.wait_for(
                queue.fire_due(self._db, schedule.name, now=self._clock(),
                               grace_seconds=self._grace, kind="catch-up",
                               cron=schedule.cron, timezone=schedule.timezone),
                self._timeout)
            self._report(outcome, "catch-up")
            outcomes.append(outcome)
        return outcomes

    async def _fire(
        self, name: str, kind: str, cron: str, timezone: str,
    ) -> FiringOutcome | None:
        try:
            outcome = await asyncio.wait_for(
                queue.fire_due(self._db, name, now=self._clock(), grace_seconds=self._grace,
                               kind=kind, cron=cron, timezone=timezone),
                self._timeout)
        except Exception as error:
            if is_connection_error(error) or isinstance(error, asyncpg.PostgresError):
                log.warning("firing failed; it will be caught up when the database is back",
                            schedule=name, error=mask_secrets(str(error)))
            else:
                log.exception("firing failed", schedule=name)
            return None
        self._report(outcome, kind)
        return outcome

    def _report(self, outcome: FiringOutcome, kind: str) -> None:
        fire_time = outcome.fire_time.isoformat() if outcome.fire_time else None
        if outcome.status == FIRED:
            assert outcome.firing is not None
            log.info("schedule fired" if kind == "scheduled" else "missed firing caught up",
                     schedule=outcome.schedule, fire_time=fire_time, kind=kind,
                     job_id=outcome.firing.job_id, job_created=outcome.firing.job_created)
        elif outcome.status == MISSED:
            assert outcome.fire_time is not None
            key = (outcome.schedule, outcome.fire_time)
            if key not in self._reported_missed:
                self._reported_missed.add(key)
                log.warning("firing missed: older than the grace window, skipped",
                            schedule=outcome.schedule, fire_time=fire_time,
                            grace_seconds=self._grace)
        else:
            log.debug("nothing to fire", schedule=outcome.schedule, status=outcome.status,
                      fire_time=fire_time, kind=kind)
