"""The scheduler service: APScheduler timers for the schedules table, kept in sync by NOTIFY.

One APScheduler job per enabled schedule, with the id of the schedule's name and a
``ScheduleTrigger`` of its (cron, timezone). The job runs no work: it calls the firer,
which claims the fire time and sends the job in one transaction (see
``shared.queue.firings``). Any number of replicas may run; the database lets one of them
send each fire time. There is no leader: the claim is what guarantees once.

    start ─► listener connects ─► full sync ─► timers fire ─► firer
                 ▲   │ NOTIFY {"name"}: reload that schedule
                 │   ▼
      lost / resync timer / failed firing ─► full sync (retried with backoff)

The sync, the resync timer and the pruning of old firings are ``shared.service`` loops:
a connection error goes to the outage watch and the pass is retried with backoff.

A *full sync* reloads every schedule (adds, re-times and removes timers) and then runs a
catch-up pass: each enabled schedule's latest fire time, if it is inside the grace window
and not fired yet, is fired now. It runs after every (re)connection of the listener — so
at start, and after the database comes back — every ``resync_seconds``, and after a
firing failed for want of a database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from scheduler.firing import Firer
from scheduler.settings import SchedulerSettings
from scheduler.trigger import ScheduleTrigger
from shared import queue
from shared.db import Database
from shared.listener import Listener
from shared.logging import get_logger
from shared.queue import NotFound, Schedule
from shared.service import Loop

log = get_logger("scheduler")


def utc_now() -> datetime:
    return datetime.now(UTC)


class SchedulerService:
    def __init__(
        self, db: Database, settings: SchedulerSettings, *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._firer = Firer(db, clock=clock, grace_seconds=settings.grace_seconds,
                            timeout_seconds=settings.db_timeout_seconds)
        # Late wake-ups still fire (the grace window decides), and a backlog fires once.
        self._timers = AsyncIOScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "misfire_grace_time": None, "max_instances": 10})
        self._listener = Listener(
            db, ["schedules"], self._on_notify, on_connect=self._on_connect,
            health_interval=settings.listen_check_seconds,
            health_timeout=min(settings.listen_check_seconds, 5.0))
        self._loaded: dict[str, tuple[str, str]] = {}
        self._pending: set[str] = set()
        self._full_sync = False
        # Syncs when asked (a notification, a (re)connection, a failed firing, the resync).
        self._sync = Loop(db, "schedule sync", interval=None, immediate=False,
                          first=0.2, cap=10.0, work=self._sync_pass,
                          db_error="schedule sync failed; retrying")
        # The safety net for a notification that never came.
        self._resync = Loop(db, "schedule resync", interval=settings.resync_seconds,
                            immediate=False, first=0.2, cap=10.0, work=self._request_resync)
        self._pruner = Loop(db, "firing pruning", interval=settings.prune_seconds,
                            first=1.0, cap=settings.prune_seconds, work=self._prune,
                            db_error="pruning firings failed")
        self._in_flight: set[asyncio.Task[Any]] = set()
        self.synced = asyncio.Event()  # set after each full sync (tests wait on it)
        self.syncs = 0

    @property
    def loaded(self) -> dict[str, tuple[str, str]]:
        """{schedule name: (cron, timezone)} of the timers armed now."""
        return dict(self._loaded)

    def next_wake_up(self, name: str) -> datetime | None:
        job = self._timers.get_job(name)
        return None if job is None else job.next_run_time

    async def start(self) -> None:
        """Arm the timers and start listening; returns once listening (the first sync
        runs in the background, and waits for the database if it is not there)."""
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self._timers.start()
        for loop in (self._sync, self._resync, self._pruner):
            await loop.start()
        await self._listener.start()
        log.info("scheduler started", grace_seconds=self._settings.grace_seconds)

    async def stop(self) -> None:
        await self._listener.stop()
        for loop in (self._sync, self._resync, self._pruner):
            await loop.stop()
        if self._timers.running:
            self._timers.shutdown(wait=False)
        # A firing in flight either commits (its job exists) or rolls back (still due).
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self._settings.db_timeout_seconds)
        log.info("scheduler stopped")

    def request_full_sync(self) -> None:
        self._full_sync = True
        self._sync.wake()

    # ------------------------------------------------------------------ notifications

    def _on_notify(self, _channel: str, payload: dict[str, Any]) -> None:
        name = payload.get("name")
        if isinstance(name, str):
            self._pending.add(name)
            self._sync.wake()

    async def _on_connect(self) -> None:
        self.request_full_sync()

    # ------------------------------------------------------------------ syncing

    async def _sync_pass(self) -> None:
        """Reload what was asked for: every schedule, or the ones named by notifications;
        what failed is asked for again (the retry comes after the loop's backoff)."""
        full, names = self._full_sync, self._pending
        self._full_sync, self._pending = False, set()
        try:
            if full:
                await self._sync_all()
            else:
                for name in sorted(names):
                    await self._reload(name)
        except Exception:
            self._full_sync = self._full_sync or full
            self._pending |= names
            raise

    async def _sync_all(self) -> None:
        schedules = await asyncio.wait_for(
            queue.list_schedules(self._db), self._settings.db_timeout_seconds)
        wanted = {s.name: s for s in schedules if s.enabled}
        for name in set(self._loaded) - set(wanted):
            self._unload(name)
        for schedule in wanted.values():
            self._load(schedule)
        await self._firer.catch_up(wanted.values())
        self.syncs += 1
        self.synced.set()
        log.debug("schedules synced", armed=sorted(self._loaded))

    async def _reload(self, name: str) -> None:
        try:
            schedule = await asyncio.wait_for(
                queue.get_schedule(self._db, name), self._settings.db_timeout_seconds)
        except NotFound:
            self._unload(name)
            return
        if schedule.enabled:
            self._load(schedule)
        else:
            self._unload(name)

    def _load(self, schedule: Schedule) -> None:
        definition = (schedule.cron, schedule.timezone)
        if self._loaded.get(schedule.name) == definition:
            return
        self._timers.add_job(
            self._on_time, trigger=ScheduleTrigger(schedule.timing), id=schedule.name,
            name=schedule.name, replace_existing=True,
            kwargs={"name": schedule.name, "cron": schedule.cron, "timezone": schedule.timezone})
        replaced = schedule.name in self._loaded
        self._loaded[schedule.name] = definition
        log.info("schedule re-armed" if replaced else "schedule armed", schedule=schedule.name,
                 cron=schedule.cron, timezone=schedule.timezone,
                 next_fire=_iso(self.next_wake_up(schedule.name)))

    def _unload(self, name: str) -> None:
        if self._loaded.pop(name, None) is None:
            return
        with contextlib.suppress(JobLookupError):
            self._timers.remove_job(name)
        log.info("schedule disarmed", schedule=name)

    # ------------------------------------------------------------------ timers

    async def _on_time(self, name: str, cron: str, timezone: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            if await self._firer.on_time(name, cron, timezone) is None:
                self.request_full_sync()  # catch it up once the database answers
        finally:
            self._in_flight.discard(task)

    async def _request_resync(self) -> None:
        self.request_full_sync()

    async def _prune(self) -> None:
        """Delete firings older than their retention."""
        cutoff = self._clock() - timedelta(seconds=self._settings.firing_retention_seconds)
        pruned = await asyncio.wait_for(
            queue.prune_firings(self._db, cutoff), self._settings.db_timeout_seconds)
        if pruned:
            log.info("old firings pruned", count=pruned)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
