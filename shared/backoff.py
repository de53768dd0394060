"""Exponential backoff with jitter, for every loop that retries after the database failed.

Each failure waits the current delay times a random factor in [0.5, 1.5), so a fleet that
lost its database together does not come back in lockstep, then doubles the delay up to
a cap; a success resets it.
"""

from __future__ import annotations

import asyncio
import random


class Backoff:
    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    def next(self) -> float:
        """The jittered wait for this failure; the next failure waits twice as long."""
        wait = self.delay * (0.5 + random.random())
        self.delay = min(self.delay * 2, self.cap)
        return wait

    async def sleep(self) -> None:
        await asyncio.sleep(self.next())
