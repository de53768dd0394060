"""Validation of values entering the core: each error names its field."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.queue import InvalidInput, JobSpec
from shared.queue import validation as check


@pytest.mark.parametrize("name", ["a", "collect-analytics", "x.y_z-1", "0", "a" * 63])
def test_good_queue_names(name: str) -> None:
    assert check.queue_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "-a", "a b", "a" * 64, None, 5, "ä"])
def test_bad_queue_names(name: object) -> None:
    with pytest.raises(InvalidInput) as error:
        check.queue_name(name)
    assert error.value.field == "queue"


def test_json_text_refuses_what_json_cannot_carry_and_huge_documents() -> None:
    assert check.json_text({"a": [1, "b", None]}) == '{"a":[1,"b",null]}'
    for bad in ({1, 2}, object(), {"k": b"x"}):
        with pytest.raises(InvalidInput):
            check.json_text(bad)
    with pytest.raises(InvalidInput, match="limit"):
        check.json_text("x" * (check.MAX_DATA_BYTES + 1))


def test_numbers_refuse_bools_nan_and_out_of_range() -> None:
    with pytest.raises(InvalidInput):
        check.priority(True)
    with pytest.raises(InvalidInput):
        check.delay(math.nan)
    with pytest.raises(InvalidInput):
        check.run_timeout(0)
    assert check.run_timeout(0.5) == 0.5


def test_job_spec_refuses_start_after_and_delay_together() -> None:
    from datetime import UTC, datetime

    with pytest.raises(InvalidInput, match="not both"):
        JobSpec.of("q", start_after=datetime.now(UTC), delay=5)


def test_a_plain_job_spec_is_the_checked_one_with_every_option_left_out() -> None:
    assert JobSpec.plain("q", '{"n":1}', 5) == JobSpec.of("q", {"n": 1}, priority=5)
    assert JobSpec.plain("q", "{}") == JobSpec.of("q")
    assert JobSpec.plain("q", "{}") != JobSpec.of("q", retry_limit=1)


@pytest.mark.parametrize("name", ["q\n", "q\nDROP", "ok\n"])
def test_a_trailing_newline_does_not_sneak_past_the_pattern(name: str) -> None:
    with pytest.raises(InvalidInput):
        check.queue_name(name)


@pytest.mark.parametrize("value", [
    datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC),
    datetime(1969, 12, 30, 23, 59, 59, tzinfo=UTC),
    datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))])
def test_start_after_outside_1970_to_9999_is_refused(value: datetime) -> None:
    """asyncpg writes Python's extremes as -infinity and infinity."""
    with pytest.raises(InvalidInput, match="years 1970 to 9999"):
        check.start_after(value)
    assert check.start_after(datetime(1970, 1, 1, tzinfo=timezone(timedelta(hours=14))))
