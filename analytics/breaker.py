"""A circuit breaker for one source in one worker process: a pure state machine.

During an outage, every job would otherwise wait out a timeout per source. The breaker
counts consecutive failures; past a threshold it opens, and calls are refused at once
(the source is marked missing) until a cool-down has passed, when one probe goes
through: its success closes the breaker, its failure opens it for another cool-down.

    closed ──N consecutive failures──► open ──cool-down──► half-open (one probe in flight)
      ▲  └─ success resets the count     ▲                    │
      │                                  └──probe failed──────┤
      └────────────────────────probe succeeded────────────────┘

A caller asks ``allow()`` before each request and reports the outcome with the ticket
it got: ``success``, ``failure`` or ``abandon`` (cancelled: no verdict). Outcomes of
requests let through while closed but reported after the breaker opened are stale and
ignored, so a burst of slow failures cannot keep pushing the cool-down back, and only
the probe decides when an open breaker closes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED = "closed"
HALF_OPEN = "half-open"
OPEN = "open"
# As exported in the worker's metrics (ms8_source_breaker_state).
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}

# What allow() hands out: a request let through while closed, or the half-open probe.
PASS = "pass"
PROBE = "probe"


class Breaker:
    def __init__(
        self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or cooldown < 0:
            raise ValueError("a breaker needs failures >= 1 and cooldown >= 0")
        self.threshold = failures
        self.cooldown = cooldown
        self._clock = clock
        self.state = CLOSED
        self.consecutive_failures = 0
        self.opened = 0  # how often it opened (for logs and tests)
        self._opened_at = 0.0
        self._probing = False

    def refuses(self) -> bool:
        """Whether ``allow()`` would refuse now (a check that hands out nothing)."""
        if self.state == CLOSED:
            return False
        if self.state == HALF_OPEN:
            return self._probing
        return self._clock() - self._opened_at < self.cooldown

    def allow(self) -> str | None:
        """A ticket for one request (PASS or PROBE), or None: do not call the source."""
        if self.state == CLOSED:
            return PASS
        if self.state == OPEN and self._clock() - self._opened_at >= self.cooldown:
            self.state = HALF_OPEN
        if self.state == HALF_OPEN and not self._probing:
            self._probing = True
            return PROBE
        return None

    def success(self, ticket: str) -> None:
        if ticket == PROBE:
            self._probing = False
            self.state = CLOSED
            self.consecutive_failures = 0
        elif self.state == CLOSED:
            self.consecutive_failures = 0

    def failure(self, ticket: str) -> None:
        if ticket == PROBE:
            self._probing = False
            self._open()
        elif self.state == CLOSED:
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.threshold:
                self._open()

    def abandon(self, ticket: str) -> None:
        """The request was cancelled: no verdict; a probe's turn goes to the next caller."""
        if ticket == PROBE:
            self._probing = False

    def _open(self) -> None:
        self.state = OPEN
        self._opened_at = self._clock()
        self.consecutive_failures = 0
        self.opened += 1
