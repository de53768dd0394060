"""The APScheduler trigger of a schedule: a CronTrigger whose fire times come from shared.cron.

``shared.cron`` is the authority on fire times (the firing statement records the time it
computes, and the API and CLI show it). APScheduler 3.x's own CronTrigger arithmetic
disagrees with it around daylight-saving changes, and sometimes loses a fire time
outright: ``0 0 * * mon`` in Europe/Berlin skips Monday 31 March 2025 (the day after the
spring-forward change), ``15 */2 * * *`` in America/Sao_Paulo skips the 00:15 that the
2018 change pushed to 01:15. So the trigger keeps CronTrigger's fields and time zone (for
its repr and for anything that inspects them) but asks ``shared.cron`` for the next time.
It also expresses what CronTrigger cannot: both day fields restricted means either.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from shared.cron import CronSchedule

_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _values(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)


class ScheduleTrigger(CronTrigger):
    """Fires at the times of a ``shared.cron.CronSchedule``, in its time zone."""

    __slots__ = ("schedule",)

    def __init__(self, schedule: CronSchedule) -> None:
        expr = schedule.expression
        super().__init__(
            month=_values(expr.months), day=_values(expr.days),
            day_of_week=",".join(_WEEKDAY_NAMES[d] for d in expr.weekdays),
            hour=_values(expr.hours), minute=_values(expr.minutes),
            second=_values(expr.seconds), timezone=schedule.timezone,
        )
        self.schedule = schedule

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime,
    ) -> datetime | None:
        # APScheduler asks for the first time at or after ``now`` when nothing fired yet.
        after = previous_fire_time or now - timedelta(microseconds=1)
        found = self.schedule.next_after(after)
        return None if found is None else found.astimezone(self.timezone)

    def __str__(self) -> str:
        return f"cron[{self.schedule.expression.text!r} {self.schedule.timezone_name}]"

    def __repr__(self) -> str:
        return f"<ScheduleTrigger ({self})>"
