"""Cron expressions in a time zone: parsing, validation and fire times, with no scheduler.

This module is the authority on *when* a schedule fires. The scheduler process uses
APScheduler only as an alarm clock; the fire time it records is computed here, so that
every replica (and the API, and the CLI) agrees on it to the microsecond.

Syntax: five fields ``minute hour day-of-month month day-of-week``, or six with a leading
``second`` field for short intervals. A field is ``*`` or a comma list of ``n``, ``a-b``,
``*/step``, ``a-b/step`` or ``a/step``; months and weekdays may be names (``jan``, ``mon``);
weekday 0 and 7 are Sunday. The macros ``@yearly`` (``@annually``), ``@monthly``,
``@weekly``, ``@daily`` (``@midnight``) and ``@hourly`` stand for their usual expressions.
As in Vixie cron, when both day fields are restricted (neither starts with ``*``) a day
matches if *either* does; otherwise it must match both.

Fire times are local wall-clock times of the schedule's time zone. Across daylight-saving
changes:

- a local time that a spring-forward change skips fires as far past the change as it was
  past the start of the gap (02:30 fires at 03:30 when clocks jump from 02:00 to 03:00);
  skipped times that land on one instant fire once there;
- a local time that a fall-back change repeats fires once, at its first occurrence, unless
  the hour field starts with ``*`` (the schedule runs every hour or every n hours): then it
  fires at both, as the real clock passes each.

Invariant: fire times are whole seconds, strictly increasing, and ``next_after`` /
``latest_at_or_before`` never skip one.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CronError", "CronExpression", "CronSchedule", "load_timezone"]


class CronError(ValueError):
    """A cron expression or time zone is malformed; the message names it."""


MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {name: i for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_WEEKDAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_DAYS_IN_MONTH = {m: 29 if m == 2 else calendar.monthrange(2001, m)[1] for m in range(1, 13)}
_ITEM = re.compile(r"^(?:(\*)|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/([0-9]+))?$")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DAY = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS)
_WEEKDAY = _Field("day-of-week", 0, 7, _WEEKDAYS)


def _parse_field(field: _Field, text: str, expression: str) -> tuple[int, ...]:
    def fail(why: str) -> CronError:
        return CronError(f"cron expression {expression!r}: {field.name} field {text!r}: {why}")

    def number(token: str) -> int:
        if field.names and token in field.names:
            return field.names[token]
        if not token.isdigit():
            allowed = f" or a name ({', '.join(field.names)})" if field.names else ""
            raise fail(f"{token!r} is not a number{allowed}")
        value = int(token)
        if not field.low <= value <= field.high:
            raise fail(f"{value} is out of range {field.low}-{field.high}")
        return value

    values: set[int] = set()
    for item in text.lower().split(","):
        match = _ITEM.fullmatch(item)
        if not match:
            raise fail(f"{item!r} is not *, n, a-b, */step, a-b/step or a/step"
                       " (L, W, # and ? are not supported)")
        star, first, last, step_text = match.groups()
        step = 1 if step_text is None else int(step_text)
        if step == 0:
            raise fail("a step must be at least 1")
        if star:
            low, high = field.low, field.high
        else:
            low = number(first)
            high = number(last) if last is not None else (field.high if step_text else low)
            if high < low:
                raise fail(f"range {first}-{last} runs backwards")
        values.update(range(low, high + 1, step))
    if field is _WEEKDAY and 7 in values:
        values.discard(7)
        values.add(0)
    return tuple(sorted(values))


def load_timezone(name: str) -> ZoneInfo:
    """The IANA time zone called ``name`` (``UTC``, ``Europe/Berlin``), or a CronError."""
    if not isinstance(name, str) or not name.strip():
        raise CronError(f"time zone {name!r} is not an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(
            f"time zone {name!r} is unknown: use an IANA name such as UTC or Europe/Berlin"
        ) from None


@dataclass(frozen=True)
class CronExpression:
    """A parsed expression: the sets of values each field allows, in ascending order."""

    text: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]  # 0 = Sunday
    day_star: bool
    weekday_star: bool
    hour_star: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        if not isinstance(text, str):
            raise CronError(f"cron expression must be a string, got {text!r}")
        normal = " ".join(text.split())
        expanded = MACROS.get(normal.lower(), normal)
        if expanded.startswith("@"):
            raise CronError(f"cron expression {text!r}: unknown macro (known: {', '.join(MACROS)})")
        parts = expanded.split(" ") if expanded else []
        if len(parts) == 5:
            parts = ["0", *parts]
        elif len(parts) != 6:
            raise CronError(
                f"cron expression {text!r} has {len(parts)} fields; expected 5 (minute hour "
                "day-of-month month day-of-week) or 6 (with a leading second)")
        fields = (_SECOND, _MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY)
        second, minute, hour, day, month, weekday = (
            _parse_field(f, part, text) for f, part in zip(fields, parts, strict=True))
        expr = cls(normal, second, minute, hour, day, month, weekday,
                   day_star=parts[3].startswith("*"), weekday_star=parts[5].startswith("*"),
                   hour_star=parts[2].startswith("*"))
        if expr.weekday_star and not any(
                d <= _DAYS_IN_MONTH[m] for m in expr.months for d in expr.days):
            raise CronError(f"cron expression {text!r} never fires: no month of it has such a day")
        return expr

    @property
    def days_or(self) -> bool:
        """True when a day matches if either day field does (both are restricted)."""
        return not (self.day_star or self.weekday_star)

    def day_matches(self, day: date) -> bool:
        in_month = day.day in self.days
        in_week = day.isoweekday() % 7 in self.weekdays
        return (in_month or in_week) if self.days_or else (in_month and in_week)

    def next_local(self, after: datetime, *, inclusive: bool = False) -> datetime | None:
        """The first naive local time matching the fields at or after ``after`` (naive)."""
        start = after.replace(microsecond=0)
        if start < after or not inclusive:
            start += timedelta(seconds=1)
        day = start.date()
        clock: time | None = start.time()
        limit = day.year + 40
        while day.year <= limit:
            if day.month not in self.months:
                later = [m for m in self.months if m > day.month]
                day = (date(day.year, later[0], 1) if later
                       else date(day.year + 1, self.months[0], 1))
                clock = None
                continue
            if self.day_matches(day):
                found = self._time_of_day(clock)
                if found is not None:
                    return datetime.combine(day, found)
            day += timedelta(days=1)
            clock = None
        return None

    def _time_of_day(self, at_least: time | None) -> time | None:
        if at_least is None:
            return time(self.hours[0], self.minutes[0], self.seconds[0])
        for hour in self.hours:
            if hour < at_least.hour:
                continue
            for minute in self.minutes:
                if hour == at_least.hour and minute < at_least.minute:
                    continue
                for second in self.seconds:
                    if (hour, minute) == (at_least.hour, at_least.minute) and (
                            second < at_least.second):
                        continue
                    return time(hour, minute, second)
        return None


# Offsets change by less than a day, and two changes of one zone are never closer than
# this window: within [lower - window, lower + window] there is at most one transition.
_WINDOW = timedelta(hours=30)
_MAX_OFFSET = timedelta(hours=15)
_SECOND_STEP = timedelta(seconds=1)


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} is naive: pass an aware datetime")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class CronSchedule:
    """A cron expression bound to a time zone: the instants (UTC) at which it fires."""

    expression: CronExpression
    timezone: tzinfo
    timezone_name: str

    @classmethod
    def of(cls, cron: str, timezone: str = "UTC") -> CronSchedule:
        return cls(CronExpression.parse(cron), load_timezone(timezone), timezone)

    def _offset(self, instant: datetime) -> timedelta:
        offset = instant.astimezone(self.timezone).utcoffset()
        assert offset is not None
        return offset

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (UTC), or None if there is none."""
        t = _utc(moment)
        lower = t  # invariant: no fire time lies in (t, lower]
        for _ in range(10_000):
            window_end = lower + _WINDOW
            before, now, after = (
                self._offset(lower + k) for k in (-_WINDOW, timedelta(0), _WINDOW))
            if before == now == after:
                local = self.expression.next_local(_naive(lower + now))
                if local is None:
                    return None
                instant = (local - now).replace(tzinfo=UTC)
                if instant <= window_end:
                    return instant
                # Nothing in this window; every later local time fires after local - 15h.
                lower = max(window_end, local.replace(tzinfo=UTC) - _MAX_OFFSET)
                continue
            start, end = (lower - _WINDOW, lower) if before != now else (lower, window_end)
            found = self._around_transition(self._transition(start, end), t, window_end)
            if found is not None:
                return found
            lower = window_end
        return None

    def _transition(self, start: datetime, end: datetime) -> datetime:
        """The instant in (start, end] at which the offset changes (to the second)."""
        first = self._offset(start)
        while end - start > _SECOND_STEP:
            middle = start + (end - start) / 2
            middle -= timedelta(microseconds=middle.microsecond)
            if middle <= start:
                middle = start + _SECOND_STEP
            if self._offset(middle) == first:
                start = middle
            else:
                end = middle
        return end

    def _around_transition(
        self, change: datetime, t: datetime, window_end: datetime,
    ) -> datetime | None:
        """The first fire time in (t, window_end] when the offset changes at ``change``."""
        old = self._offset(change - _SECOND_STEP)
        new = self._offset(change)
        expr = self.expression
        found: list[datetime] = []

        def first(after: datetime, inclusive: bool, below: datetime, offset: timedelta) -> None:
            local = expr.next_local(_naive(after), inclusive=inclusive)
            if local is not None and local < _naive(below):
                found.append((local - offset).replace(tzinfo=UTC))

        # Before the change: local times on the old offset (first occurrences included).
        first(t + old, False, change + old, old)
        # After it: the new offset; repeated local times fire again only for hour_star.
        repeat_start = change + (new if expr.hour_star or new > old else old)
        if t + new >= repeat_start:
            first(t + new, False, window_end + new + _SECOND_STEP, new)
        else:
            first(repeat_start, True, window_end + new + _SECOND_STEP, new)
        # Skipped by a spring-forward change: they fire on the old offset, just past it.
        if new > old:
            first(max(t + old, change + old - _SECOND_STEP), False, change + new, old)
        return min((f for f in found if t < f <= window_end), default=None)

    def latest_at_or_before(
        self, moment: datetime, *, not_before: datetime | None = None,
    ) -> datetime | None:
        """The last fire time at or before ``moment``, if there is one at or after
        ``not_before`` (default: forty years back)."""
        t = _utc(moment)
        floor = _utc(not_before) if not_before is not None else t - timedelta(days=40 * 366)
        if floor > t:
            return None
        step = timedelta(seconds=1)
        while True:
            start = max(t - step, floor - timedelta(microseconds=1))
            found = self.next_after(start)
            if found is not None and found <= t:
                while (later := self.next_after(found)) is not None and later <= t:
                    found = later
                return found
            if start < floor:
                return None
            step *= 2

    def between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Fire times in (start, end], in order."""
        current = self.next_after(start)
        limit = _utc(end)
        while current is not None and current <= limit:
            yield current
            current = self.next_after(current)
