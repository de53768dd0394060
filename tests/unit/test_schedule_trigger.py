"""The APScheduler trigger wakes the scheduler exactly at shared.cron's fire times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from scheduler.trigger import ScheduleTrigger
from shared.cron import CronSchedule


def wake_ups(trigger: CronTrigger, start: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    previous = None
    for _ in range(count):
        found = trigger.get_next_fire_time(previous, start)
        assert found is not None
        out.append(found.astimezone(UTC))
        previous = found
    return out


def test_first_wake_up_is_at_or_after_now_then_each_fire_time() -> None:
    trigger = ScheduleTrigger(CronSchedule.of("*/5 * * * * *"))
    start = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert wake_ups(trigger, start, 3) == [start + timedelta(seconds=5 * i) for i in range(3)]


def test_it_is_a_timezone_aware_cron_trigger() -> None:
    trigger = ScheduleTrigger(CronSchedule.of("0 9 * * 1-5", "Europe/Berlin"))
    assert isinstance(trigger, CronTrigger)
    assert str(trigger.timezone) == "Europe/Berlin"
    assert str(trigger) == "cron['0 9 * * 1-5' Europe/Berlin]"


def test_it_does_not_lose_the_monday_after_a_spring_change() -> None:
    # APScheduler's own CronTrigger arithmetic jumps from 25 March 2025 to 7 April here.
    trigger = ScheduleTrigger(CronSchedule.of("0 0 * * mon", "Europe/Berlin"))
    assert wake_ups(trigger, datetime(2025, 3, 25, tzinfo=UTC), 2) == [
        datetime(2025, 3, 30, 22, tzinfo=UTC), datetime(2025, 4, 6, 22, tzinfo=UTC)]
