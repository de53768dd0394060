"""The pure parts of how numbers move over time: windows of buckets, and the run-time
percentiles estimated from bucket counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.queue import InvalidInput
from shared.queue.rollups import BOUNDS, BUCKETS, Timing
from shared.queue.window import MAX_BUCKETS, MAX_HOURS, Window

T = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("hours, step, count", [
    (1, 60, 60), (6, 300, 72), (24, 600, 144), (72, 1800, 144), (168, 7200, 84),
    (MAX_HOURS, 21600, 125),  # 02:00 is not on a six-hour mark: one bucket more
])
def test_the_finest_step_that_fits_the_range(hours: int, step: int, count: int) -> None:
    window = Window.last(hours, T)
    assert (window.step, window.count) == (step, count)
    assert window.start <= T - timedelta(hours=hours)
    assert T <= window.end < T + timedelta(seconds=step)
    assert window.count <= MAX_BUCKETS


def test_buckets_are_aligned_on_the_epoch_whatever_the_range() -> None:
    window = Window.last(24, T + timedelta(minutes=7, seconds=30))
    assert window.start.timestamp() % window.step == 0
    assert window.end == T + timedelta(minutes=10)  # the bucket holding `until`, whole
    assert window.buckets[0] == window.start and len(window.buckets) == window.count
    assert window.index(window.start) == 0
    assert window.index(window.end - timedelta(microseconds=1)) == window.count - 1
    assert window.index(window.end) is None
    assert window.index(window.start - timedelta(seconds=1)) is None


def test_a_short_range_is_one_minute_bucket_at_least() -> None:
    window = Window.covering(T + timedelta(seconds=5), T + timedelta(seconds=9))
    assert (window.start, window.step, window.count) == (T, 60, 1)


def test_the_extremes_stay_finite() -> None:
    late = Window.last(MAX_HOURS, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert late.end <= datetime(9999, 12, 31, tzinfo=UTC)
    early = Window.last(MAX_HOURS, datetime(1970, 1, 1, tzinfo=UTC))
    assert early.start.year == 1969


@pytest.mark.parametrize("call, field", [
    (lambda: Window.last(0, T), "hours"),
    (lambda: Window.last(MAX_HOURS + 1, T), "hours"),
    (lambda: Window.last(True, T), "hours"),
    (lambda: Window.last(1, T.replace(tzinfo=None)), "until"),
    (lambda: Window.covering(T, T), "until"),
    (lambda: Window.covering(T - timedelta(hours=MAX_HOURS + 1), T), "since"),
])
def test_bad_ranges_name_the_value(call: object, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        call()  # type: ignore[operator]
    assert error.value.field == field


def timing(values: list[float]) -> Timing:
    counts = [0] * BUCKETS
    for v in values:
        counts[sum(1 for bound in BOUNDS if v >= bound)] += 1
    return Timing(tuple(counts), sum(values), max(values) if values else None)


def test_percentiles_fall_in_the_right_bucket() -> None:
    values = [0.03] * 90 + [4.0] * 10  # 90 fast jobs, 10 slow ones
    t = timing(values)
    assert t.count == 100 and t.mean == pytest.approx(0.427)
    assert 0.025 <= t.quantile(0.5) <= 0.05
    assert 2.5 <= t.quantile(0.95) <= 4.0  # never above the slowest seen
    assert t.quantile(1.0) == 4.0
    assert t.quantile(0.0) == pytest.approx(0.025)


def test_the_last_bucket_is_bounded_by_the_maximum() -> None:
    t = timing([3600.0, 7200.0])
    assert 1800 <= t.quantile(0.5) <= 7200 and t.quantile(1.0) == 7200


def test_timings_add_up_and_nothing_measures_nothing() -> None:
    a, b = timing([0.2, 0.3]), timing([9.0])
    both = a + b
    assert both == timing([0.2, 0.3, 9.0])
    assert Timing().quantile(0.5) is None and Timing().mean is None
    assert Timing() + a == a
    assert Timing.of([1, 2], 3.0, None).buckets == (1, 2) + (0,) * (BUCKETS - 2)
    with pytest.raises(ValueError):
        a.quantile(1.5)
