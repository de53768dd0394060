"""When to fetch, and from which queues: the worker's only reason to speak to the database.

A queue becomes *due* (worth a fetch) on:

    notification   a wakeup NOTIFY for it, starting now        (jobs were inserted/retried)
    timer          the earliest start_after known for it passed (delayed and retrying jobs)
    slot freed     a job of it ended and the queue is not drained
    reported       results of its jobs were reported (room under a fleet-wide cap)
    connect        the listener (re)connected: what it missed is unknown
    poll           no fetch of it for ``poll_seconds`` (safety net; the path in poll-only mode);
                   queues without a fetch for half of it are polled in the same statement

and a fetch that claims nothing marks it *drained*, so that an idle worker stays silent:
only a notification, a timer or the poll makes a drained queue due again.

Timers come from notification payloads and from ``next_start_after`` after a fetch that
left slots free. ``next_start_after`` is skipped for queues known to have nothing
waiting, as long as notifications flow (not in poll-only mode). A next start that is
already past but gave nothing (a paused queue, a fleet-wide cap, clock skew) re-arms
with a growing delay instead of spinning.

Times are wall-clock epochs, because start_after comes from the database's clock.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

FIRST_RECHECK = 0.1


class Wakeup:
    def __init__(
        self, queues: Iterable[str], *, poll_seconds: float, trust_notifications: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queues = frozenset(queues)
        self._poll = poll_seconds
        self._trust = trust_notifications
        self._clock = clock
        now = clock()
        self._due: set[str] = set(self._queues)  # the first fetch catches up on everything
        self._drained: set[str] = set()
        self._known_empty: set[str] = set()
        self._timers: dict[str, float] = {}
        self._recheck: dict[str, float] = {}
        self._last_fetch: dict[str, float] = dict.fromkeys(self._queues, now)
        self._event = asyncio.Event()
        self._stopped = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    def timers(self) -> dict[str, float]:
        return dict(self._timers)

    def recheck_delay(self, queue: str) -> float:
        """The wait before the next re-check of a queue whose due jobs were not handed out."""
        return self._recheck.get(queue, 0.0)

    def stop(self) -> None:
        self._stopped = True
        self._event.set()

    def notified(self, queue: str, start_after: float | None) -> None:
        """A wakeup NOTIFY: jobs of ``queue`` became waiting, the earliest at ``start_after``."""
        if queue not in self._queues:
            return
        self._known_empty.discard(queue)
        if start_after is None or start_after <= self._clock():
            self._make_due(queue)
        else:
            self._set_timer(queue, start_after)

    def connected(self) -> None:
        """The listener (re)connected: notifications may have been missed meanwhile."""
        self._known_empty.clear()
        for queue in self._queues:
            self._make_due(queue)

    def slot_freed(self, queue: str) -> None:
        if queue in self._queues and queue not in self._drained:
            self._make_due(queue)

    def reported(self, queue: str) -> None:
        """Results of jobs of ``queue`` reached the database: a fetch that a fleet-wide cap
        held back may now get jobs, so the queue is due even if it looked drained."""
        if queue in self._queues:
            self._make_due(queue)

    def retry_at(self, queue: str, start_after: datetime) -> None:
        """A job of ``queue`` will be waiting again at ``start_after`` (we failed it)."""
        self.notified(queue, start_after.timestamp())

    def fetched(self, asked: Mapping[str, int], got: Mapping[str, int]) -> None:
        now = self._clock()
        for queue in asked:
            self._last_fetch[queue] = now
            if got.get(queue, 0) > 0:
                self._drained.discard(queue)
                self._recheck.pop(queue, None)
            else:
                self._drained.add(queue)

    def unknown_next_start(self, queues: Iterable[str]) -> list[str]:
        """Those of ``queues`` whose next start is worth asking the database about."""
        if not self._trust:
            return list(queues)
        return [q for q in queues if q not in self._known_empty]

    def arm(self, queues: Iterable[str], start_after: datetime | None) -> None:
        """The earliest start_after of the jobs waiting in ``queues`` (None: none wait)."""
        queues = [q for q in queues if q in self._queues]
        if start_after is None:
            self._known_empty.update(queues)
            return
        at = start_after.timestamp()
        now = self._clock()
        for queue in queues:
            self._known_empty.discard(queue)
            if at > now:
                self._set_timer(queue, at)
                continue
            # Waiting and due, yet the fetch got none of them: back off, don't spin.
            delay = self._recheck.get(queue, FIRST_RECHECK)
            self._recheck[queue] = min(delay * 2, self._poll)
            self._set_timer(queue, now + delay)

    async def wait(self) -> set[str]:
        """Wait until some queues are due and return them (empty once stopped)."""
        while not self._stopped:
            now = self._clock()
            for queue, at in list(self._timers.items()):
                if at <= now:
                    del self._timers[queue]
                    self._make_due(queue)
            if min(self._last_fetch.values(), default=math.inf) + self._poll <= now:
                # One poll statement for several queues: those half-way to their own
                # poll come along, so that an idle worker's polls stay in step.
                for queue, last in self._last_fetch.items():
                    if last + self._poll / 2 <= now:
                        self._last_fetch[queue] = now
                        self._make_due(queue)
            if self._due:
                due, self._due = self._due, set()
                return due
            self._event.clear()
            deadline = self._next_deadline()
            try:
                async with asyncio.timeout(None if deadline == math.inf
                                           else max(deadline - now, 0.0)):
                    await self._event.wait()
            except TimeoutError:
                pass
        return set()

    def _next_deadline(self) -> float:
        deadline = math.inf
        if self._timers:
            deadline = min(self._timers.values())
        if self._last_fetch:
            deadline = min(deadline, min(self._last_fetch.values()) + self._poll)
        return deadline

    def _make_due(self, queue: str) -> None:
        self._drained.discard(queue)
        self._due.add(queue)
        self._event.set()

    def _set_timer(self, queue: str, at: float) -> None:
        current = self._timers.get(queue)
        if current is None or at < current:
            self._timers[queue] = at
            self._event.set()
