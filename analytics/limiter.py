"""A concurrency limit whose waiters go in by priority: a source's slots in one process.

``asyncio.Semaphore`` lets waiters in by arrival. A worker running fifty nightly
collections and one fresh-data job would then make the person's request queue behind
every batch request already waiting for the source. Here the highest priority waiting
goes first, then the earliest; a freed slot passes straight to the next waiter, so a
newcomer cannot slip in ahead of those already waiting.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class PriorityLimiter:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a limiter needs a limit >= 1")
        self.limit = limit
        self._free = limit
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @asynccontextmanager
    async def slot(self, priority: int = 0) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, priority: int = 0) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        entry = (-priority, next(self._order), asyncio.get_running_loop().create_future())
        heapq.heappush(self._waiting, entry)
        try:
            await entry[2]
        except asyncio.CancelledError:
            if entry[2].done() and not entry[2].cancelled():
                self.release()  # handed a slot as it was cancelled: hand it on
            elif entry in self._waiting:  # else a release already skipped it
                self._waiting.remove(entry)
                heapq.heapify(self._waiting)
            raise

    def release(self) -> None:
        while self._waiting:
            _, _, granted = heapq.heappop(self._waiting)
            if not granted.done():
                granted.set_result(None)
                return
        self._free += 1
