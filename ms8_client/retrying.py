"""When to try a request again, and how long to wait first.

A reply of 502, 503 or 504 (the API's database is unreachable, or a proxy in front of a
restarting API) and a request that never got an answer are tried again, at most
``retries`` times. The wait is the reply's ``Retry-After`` (seconds or an HTTP date) when
it gives one, else an exponential backoff with jitter; either way at most ``max_wait``.
Every call of the client is safe to repeat: ``add`` always carries an idempotency key.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 5
    first_delay: float = 0.5
    max_wait: float = 30.0

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 0)."""
        asked = None if response is None else retry_after(response)
        if asked is None:
            asked = self.first_delay * 2 ** attempt * random.uniform(0.8, 1.2)
        return max(0.0, min(asked, self.max_wait))


def retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds, or None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
