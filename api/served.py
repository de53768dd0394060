"""Whether a live worker serves a queue, for the replies to sends and the queue listings.

A send to a queue no live worker runs is accepted (workers may come later), but its reply
carries a warning, so a typo or a missing handler shows the same minute. The set of
served queues is read from the worker registry at most once per ``ttl`` per process
(concurrent requests share one read), so a busy API adds one small query per couple of
seconds, not one per send.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from shared.db import Database
from shared.queue import served_queues

NOT_SERVED = "queue_not_served"


class ServedQueues:
    def __init__(self, db: Database, *, seen_within: float, ttl: float = 2.0) -> None:
        self._db = db
        self._seen_within = seen_within
        self._ttl = ttl
        self._served: frozenset[str] | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def served(self) -> frozenset[str]:
        """The queues some worker seen in the last ``seen_within`` seconds runs."""
        if self._served is None or time.monotonic() >= self._expires:
            async with self._lock:  # one read for everyone waiting
                if self._served is None or time.monotonic() >= self._expires:
                    self._served = await served_queues(self._db, seen_within=self._seen_within)
                    self._expires = time.monotonic() + self._ttl
        return self._served

    async def warnings(self, queues: Iterable[str | None]) -> list[dict[str, Any]]:
        """One warning per queue among ``queues`` that no live worker serves."""
        served = await self.served()
        unserved = sorted({q for q in queues if q is not None and q not in served})
        return [{"code": NOT_SERVED, "queue": name, "message": (
            f"no live worker serves queue {name!r} (none seen in the last "
            f"{self._seen_within:g} s): its jobs wait until one does")} for name in unserved]


def with_warnings(body: dict[str, Any], warnings: list[dict[str, Any]]) -> dict[str, Any]:
    """A send's reply, with its warnings when there are any."""
    return {**body, "warnings": warnings} if warnings else body
