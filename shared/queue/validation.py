"""Checks on every value entering the core, done before any SQL runs.

Each check returns the value in the form the SQL wants, or raises ``InvalidInput`` naming
the field and saying what is allowed. The same limits back the CHECK constraints of the
schema, so a value that passes here is never refused by the database.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.queue.errors import InvalidInput
from shared.queue.models import ALL_STATES

QUEUE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
PRIORITY_MIN, PRIORITY_MAX = -1000, 1000
MAX_DELAY_SECONDS = 366 * 86400
MAX_RETRY_LIMIT = 1000
MAX_CRASH_LIMIT = 1000
MAX_RETRY_DELAY_SECONDS = 7 * 86400
MAX_RUN_TIMEOUT_SECONDS = 7 * 86400
MAX_SINGLETON_KEY = 200
MAX_DATA_BYTES = 1024 * 1024
# Years 1970 to 9999 as written in any time zone; never Python's extremes, which asyncpg
# writes as -infinity and infinity.
EARLIEST = datetime(1969, 12, 31, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
TIME_RANGE_MESSAGE = "must be in the years 1970 to 9999 (1969-12-31T00:00:00Z at the earliest)"
MAX_MESSAGE = 1000
MAX_ID = 2**63 - 1


def queue_name(name: Any, field: str = "queue") -> str:
    if not isinstance(name, str) or not QUEUE_NAME.fullmatch(name):
        raise InvalidInput(
            field,
            f"{name!r} is not a queue name: use 1-63 characters of a-z, 0-9, '_', '.', '-', "
            "starting with a letter or digit",
        )
    return name


def json_text(value: Any, field: str = "data") -> str:
    """The value as JSON text, refusing what JSON cannot carry."""
    try:
        text = orjson.dumps(value)
    except TypeError as error:
        raise InvalidInput(field, f"is not JSON-serialisable ({error})") from None
    if len(text) > MAX_DATA_BYTES:
        raise InvalidInput(field, f"is {len(text)} bytes as JSON; the limit is {MAX_DATA_BYTES}")
    return text.decode()


def integer(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise InvalidInput(field, f"must be between {low} and {high}, got {value}")
    return value


def seconds(value: Any, field: str, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidInput(field, f"must be a number of seconds, got {value!r}")
    if value < low or value > high or (low_open and value <= low):
        bound = f"above {low}" if low_open else f"at least {low}"
        raise InvalidInput(field, f"must be {bound} and at most {high} seconds, got {value}")
    return float(value)


def priority(value: Any) -> int:
    return integer(value, "priority", PRIORITY_MIN, PRIORITY_MAX)


def job_id(value: Any, field: str = "id") -> int:
    return integer(value, field, 1, MAX_ID)


def job_ids(values: Iterable[Any], field: str = "ids") -> list[int]:
    return [job_id(v, field) for v in values]


def start_after(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInput("start_after", f"must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("start_after", "must carry a timezone (naive datetimes are ambiguous)")
    if not in_time_range(value):
        raise InvalidInput("start_after", TIME_RANGE_MESSAGE)
    return value


def in_time_range(value: datetime) -> bool:
    """Within ``EARLIEST`` and ``LATEST``: infinities read back without a zone."""
    try:
        return EARLIEST <= value <= LATEST
    except OverflowError:
        return False


def delay(value: Any) -> float:
    return seconds(value, "delay", 0, MAX_DELAY_SECONDS)


def retry_limit(value: Any) -> int:
    return integer(value, "retry_limit", 0, MAX_RETRY_LIMIT)


def crash_limit(value: Any) -> int:
    return integer(value, "crash_limit", 1, MAX_CRASH_LIMIT)


def retry_delay(value: Any, field: str = "retry_delay") -> float:
    return seconds(value, field, 0, MAX_RETRY_DELAY_SECONDS)


def run_timeout(value: Any) -> float:
    return seconds(value, "run_timeout", 0, MAX_RUN_TIMEOUT_SECONDS, low_open=True)


def singleton_key(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SINGLETON_KEY:
        raise InvalidInput(
            "singleton_key", f"must be a string of 1 to {MAX_SINGLETON_KEY} characters")
    return value


def progress(value: Any) -> int:
    return integer(value, "progress", 0, 100)


def message(value: Any, field: str = "message") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, got {value!r}")
    return value[:MAX_MESSAGE]


def states(values: Iterable[Any] | None) -> list[str]:
    if values is None:
        return list(ALL_STATES)
    result = []
    for value in values:
        if value not in ALL_STATES:
            raise InvalidInput("state", f"{value!r} is not one of {', '.join(ALL_STATES)}")
        result.append(value)
    return result


def page_size(value: Any) -> int:
    return integer(value, "limit", 1, 1000)


def optional(value: Any, check: Any) -> Any:
    return None if value is None else check(value)
