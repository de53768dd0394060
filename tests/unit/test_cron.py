"""Cron maths without a database: parsing, errors, fire times across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.cron import CronError, CronExpression, CronSchedule, load_timezone


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(expr: str, tz: str, start: datetime, count: int) -> list[datetime]:
    schedule = CronSchedule.of(expr, tz)
    out: list[datetime] = []
    moment = start
    for _ in range(count):
        found = schedule.next_after(moment)
        assert found is not None
        out.append(found)
        moment = found
    return out


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "field", "values"),
    [
        ("*/15 * * * *", "minutes", (0, 15, 30, 45)),
        ("0 9-17/4 * * *", "hours", (9, 13, 17)),
        ("0 0 * * mon-fri", "weekdays", (1, 2, 3, 4, 5)),
        ("0 0 * * 7", "weekdays", (0,)),
        ("0 0 * jan,JUL *", "months", (1, 7)),
        ("5/20 * * * * *", "seconds", (5, 25, 45)),
        ("0 0 1,15 * *", "days", (1, 15)),
    ],
)
def test_fields_parse_to_value_sets(text: str, field: str, values: tuple[int, ...]) -> None:
    assert getattr(CronExpression.parse(text), field) == values


def test_five_fields_mean_second_zero_and_macros_expand() -> None:
    expr = CronExpression.parse("  0   2 * * *  ")
    assert (expr.text, expr.seconds, expr.minutes, expr.hours) == ("0 2 * * *", (0,), (0,), (2,))
    assert CronExpression.parse("@daily").hours == (0,)
    assert CronExpression.parse("@hourly").minutes == (0,)
    assert CronExpression.parse("@weekly").weekdays == (0,)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "has 0 fields"),
        ("* * * *", "has 4 fields"),
        ("* * * * * * *", "has 7 fields"),
        ("61 * * * *", "minute field '61': 61 is out of range 0-59"),
        ("0 24 * * *", "hour field '24'"),
        ("0 0 0 * *", "day-of-month field '0'"),
        ("0 0 * 13 *", "month field '13'"),
        ("0 0 * * 8", "day-of-week field '8'"),
        ("*/0 * * * *", "a step must be at least 1"),
        ("5-1 * * * *", "runs backwards"),
        ("0 0 L * *", "'l' is not a number"),
        ("0 0 ? * *", "L, W, # and ? are not supported"),
        ("0 0 * * mon#2", "not supported"),
        ("0 0 * foo *", "'foo' is not a number or a name"),
        ("0 0 1,,2 * *", "'' is not"),
        ("0 0 31 2 *", "never fires"),
        ("@reboot", "unknown macro"),
    ],
)
def test_bad_expressions_are_refused_naming_the_part(text: str, words: str) -> None:
    with pytest.raises(CronError) as error:
        CronExpression.parse(text)
    assert words in str(error.value)
    assert repr(text) in str(error.value)


def test_timezones_are_iana_names() -> None:
    assert load_timezone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    for bad in ("Mars/Olympus", "", "../etc/passwd", "Europe/"):
        with pytest.raises(CronError, match="time zone"):
            load_timezone(bad)


# --------------------------------------------------------------------------- fire times


def test_daily_at_two_utc() -> None:
    assert fires("0 2 * * *", "UTC", utc(2026, 1, 1, 2, 0), 2) == [
        utc(2026, 1, 2, 2, 0), utc(2026, 1, 3, 2, 0)]
    schedule = CronSchedule.of("0 2 * * *")
    assert schedule.next_after(utc(2026, 1, 1, 1, 59, 59, 999999)) == utc(2026, 1, 1, 2, 0)


def test_seconds_field_fires_every_few_seconds() -> None:
    assert fires("*/5 * * * * *", "UTC", utc(2026, 1, 1, 0, 0, 58), 3) == [
        utc(2026, 1, 1, 0, 1, 0), utc(2026, 1, 1, 0, 1, 5), utc(2026, 1, 1, 0, 1, 10)]


def test_both_day_fields_restricted_means_either() -> None:
    # The 13th, and every Friday: Fri 2 Jan 2026, Fri 9, Tue 13, Fri 16.
    assert [f.day for f in fires("0 0 13 * 5", "UTC", utc(2026, 1, 1), 4)] == [2, 9, 13, 16]
    # A day field starting with * restricts with AND, as in cron: odd days that are Fridays.
    assert [(f.month, f.day) for f in fires("0 0 */2 * 5", "UTC", utc(2026, 1, 1), 3)] == [
        (1, 9), (1, 23), (2, 13)]


def test_leap_day_and_month_ends() -> None:
    assert fires("0 0 29 2 *", "UTC", utc(2026, 1, 1), 2) == [utc(2028, 2, 29), utc(2032, 2, 29)]
    assert [f.month for f in fires("0 0 31 * *", "UTC", utc(2026, 1, 31), 3)] == [3, 5, 7]


def test_berlin_morning_follows_local_time_across_both_changes() -> None:
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
    assert fires("0 9 * * *", "Europe/Berlin", utc(2025, 3, 28, 12), 3) == [
        utc(2025, 3, 29, 8), utc(2025, 3, 30, 7), utc(2025, 3, 31, 7)]
    assert fires("0 9 * * *", "Europe/Berlin", utc(2025, 10, 25, 12), 3) == [
        utc(2025, 10, 26, 8), utc(2025, 10, 27, 8), utc(2025, 10, 28, 8)]


def test_skipped_local_time_fires_just_past_the_change() -> None:
    # 30 March 2025: Berlin jumps from 02:00 to 03:00; 02:30 fires at 03:30 local.
    assert fires("30 2 * * *", "Europe/Berlin", utc(2025, 3, 29, 12), 2) == [
        utc(2025, 3, 30, 1, 30), utc(2025, 3, 31, 0, 30)]


def test_repeated_local_time_fires_once_for_a_fixed_hour() -> None:
    # 26 October 2025: Berlin goes from 03:00 back to 02:00; 02:30 happens twice.
    assert fires("30 2 * * *", "Europe/Berlin", utc(2025, 10, 25, 12), 2) == [
        utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)]


def test_every_hour_keeps_the_real_clock_across_changes() -> None:
    spring = list(CronSchedule.of("0 * * * *", "Europe/Berlin").between(
        utc(2025, 3, 29, 23), utc(2025, 3, 30, 23)))
    assert len(spring) == 24 and all(b - a == timedelta(hours=1)
                                     for a, b in zip(spring, spring[1:], strict=False))
    autumn = list(CronSchedule.of("*/30 * * * *", "Europe/Berlin").between(
        utc(2025, 10, 25, 22), utc(2025, 10, 26, 23)))
    assert len(autumn) == 50 and all(b - a == timedelta(minutes=30)
                                     for a, b in zip(autumn, autumn[1:], strict=False))


def test_monday_after_the_spring_change_is_not_skipped() -> None:
    assert fires("0 0 * * mon", "Europe/Berlin", utc(2025, 3, 25), 2) == [
        utc(2025, 3, 30, 22), utc(2025, 4, 6, 22)]


def test_latest_at_or_before() -> None:
    schedule = CronSchedule.of("0 2 * * *")
    assert schedule.latest_at_or_before(utc(2026, 5, 5, 2)) == utc(2026, 5, 5, 2)
    assert schedule.latest_at_or_before(utc(2026, 5, 5, 1, 59)) == utc(2026, 5, 4, 2)
    assert schedule.latest_at_or_before(
        utc(2026, 5, 5, 1, 59), not_before=utc(2026, 5, 4, 2, 0, 1)) is None
    every = CronSchedule.of("*/3 * * * * *")
    assert every.latest_at_or_before(utc(2026, 1, 1, 0, 0, 4, 500)) == utc(2026, 1, 1, 0, 0, 3)
    assert CronSchedule.of("0 0 29 2 *").latest_at_or_before(utc(2031, 1, 1)) == utc(2028, 2, 29)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        CronSchedule.of("* * * * *").next_after(datetime(2026, 1, 1))


# --------------------------------------------------------------------------- oracle


def brute_force(expr: str, tz: str, start: datetime, end: datetime) -> list[datetime]:
    """Fire times in (start, end] by walking every local minute (the module doc's rules)."""
    zone = ZoneInfo(tz)
    parsed = CronExpression.parse(expr)
    found: set[datetime] = set()
    local = (start - timedelta(days=1)).astimezone(zone).replace(tzinfo=None, second=0,
                                                                  microsecond=0)
    last = (end + timedelta(days=1)).astimezone(zone).replace(tzinfo=None)
    while local <= last:
        if (local.minute in parsed.minutes and local.hour in parsed.hours
                and local.month in parsed.months and parsed.day_matches(local.date())):
            first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
            second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
            exists = first.astimezone(zone).replace(tzinfo=None) == local
            found.add(first)
            if exists and second != first and parsed.hour_star:
                found.add(second)
        local += timedelta(minutes=1)
    return sorted(f for f in found if start < f <= end)


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
         "America/Sao_Paulo", "Asia/Kolkata", "Pacific/Chatham"]
EXPRESSIONS = ["30 2 * * *", "0 * * * *", "*/20 * * * *", "15 */2 * * *", "0 0 * * mon",
               "45 1 1,15 * 0", "10 0-3 * * *"]
STARTS = [utc(2025, 3, 28), utc(2025, 10, 24), utc(2025, 4, 4), utc(2025, 9, 26),
          utc(2018, 11, 2), utc(2019, 2, 15)]


@pytest.mark.parametrize("tz", ZONES)
def test_fire_times_match_a_brute_force_walk_across_dst_changes(tz: str) -> None:
    for expr in EXPRESSIONS:
        schedule = CronSchedule.of(expr, tz)
        for start in STARTS:
            end = start + timedelta(days=4)
            assert list(schedule.between(start, end)) == brute_force(expr, tz, start, end), (
                expr, tz, start)
