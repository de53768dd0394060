"""The scheduler service in-process: reload on NOTIFY, catch-up on start, reconnects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import structlog

from scheduler.service import SchedulerService, utc_now
from scheduler.settings import SchedulerSettings
from shared import queue
from shared.db import Database
from tests.integration.scheduler.conftest import arm_in_the_past, firing_rows
from tests.support import wait_until

SETTINGS = SchedulerSettings.from_env({"MS8_SCHEDULER_LISTEN_CHECK_SECONDS": "0.2"})


@asynccontextmanager
async def running(
    db: Database, clock: Callable[[], datetime] = utc_now,
) -> AsyncIterator[SchedulerService]:
    service = SchedulerService(db, SETTINGS, clock=clock)
    await service.start()
    try:
        await wait_until(lambda: service.syncs > 0, message="first sync")
        yield service
    finally:
        await service.stop()


async def test_changes_are_reloaded_without_a_restart(db: Database) -> None:
    async with running(db) as service:
        assert service.loaded == {"daily-batch": ("0 2 * * *", "UTC")}
        await queue.create_schedule(db, "tick", "* * * * * *", queue="ticks")
        await wait_until(lambda: "tick" in service.loaded, message="tick armed")
        await wait_until(lambda: firing_rows(db, "tick"), message="a firing of tick")
        await queue.update_schedule(db, "tick", cron="0 0 1 1 *", timezone="Europe/Berlin")
        await wait_until(lambda: service.loaded.get("tick") == ("0 0 1 1 *", "Europe/Berlin"),
                         message="tick re-armed")
        wake = service.next_wake_up("tick")
        assert wake is not None and (wake.month, wake.day, wake.hour) == (1, 1, 0)
        assert str(wake.tzinfo) == "Europe/Berlin"
        await queue.disable_schedule(db, "tick")
        await wait_until(lambda: "tick" not in service.loaded, message="tick disarmed")
        await queue.enable_schedule(db, "tick")
        await wait_until(lambda: "tick" in service.loaded, message="tick armed again")
        await queue.delete_schedule(db, "tick")
        await wait_until(lambda: "tick" not in service.loaded, message="tick deleted")
        assert service.next_wake_up("tick") is None


async def test_on_start_a_missed_firing_inside_grace_is_caught_up_once(db: Database) -> None:
    await queue.create_schedule(db, "nightly", "0 2 * * *", queue="night")
    await arm_in_the_past(db, "nightly", datetime(2026, 1, 1, tzinfo=UTC))
    def at_two_forty() -> datetime:
        return datetime(2026, 3, 1, 2, 40, tzinfo=UTC)
    async with running(db, clock=at_two_forty):
        pass
    async with running(db, clock=at_two_forty):  # a second start changes nothing
        pass
    rows = await firing_rows(db, "nightly")
    assert [(r["fire_time"], r["kind"]) for r in rows] == [
        (datetime(2026, 3, 1, 2, tzinfo=UTC), "catch-up")]
    assert (await queue.get_job(db, rows[0]["job_id"])).queue == "night"


async def test_on_start_a_firing_outside_grace_is_skipped_with_a_log_line(db: Database) -> None:
    await queue.create_schedule(db, "nightly", "0 2 * * *", queue="night")
    await arm_in_the_past(db, "nightly", datetime(2026, 1, 1, tzinfo=UTC))
    with structlog.testing.capture_logs() as logs:
        async with running(db, clock=lambda: datetime(2026, 3, 1, 3, 0, 1, tzinfo=UTC)):
            pass
    assert await firing_rows(db, "nightly") == []
    missed = [e for e in logs if e["event"].startswith("firing missed")]
    assert [(e["schedule"], e["fire_time"]) for e in missed] == [
        ("nightly", "2026-03-01T02:00:00+00:00")]


async def test_it_carries_on_after_its_connections_are_killed(db: Database) -> None:
    await queue.create_schedule(db, "tick", "* * * * * *", queue="ticks")
    async with running(db) as service:
        await wait_until(lambda: firing_rows(db, "tick"), message="a first firing")
        syncs = service.syncs
        killed = await db.pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        assert killed >= 1
        await wait_until(lambda: service.syncs > syncs, message="a sync after reconnecting")
        count = len(await firing_rows(db, "tick"))
        await wait_until(lambda: firing_rows(db, "tick"), message="more firings")
        await wait_until(
            lambda: _more(db, count), timeout=10, message="firings after the reconnect")


async def _more(db: Database, count: int) -> bool:
    return len(await firing_rows(db, "tick")) > count + 1
