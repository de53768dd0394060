"""Keeping the worker's jobs alive: one statement per interval for all of them.

Every ``interval`` the worker marks every job it holds (running, or finished and waiting
to be reported) as alive; with no job held, nothing is sent. The statement returns the
jobs the worker still holds: those missing were cancelled, reclaimed by maintenance or
timed out meanwhile, and their handlers are cancelled (``on_lost``), since their result
would be refused anyway and another worker may already run them.

A beat that fails (the database gone) is tried again after a backoff shorter than the
interval (``shared.service``). The interval is at most half the stall timeout (checked
in settings), so one missed beat (a slow statement, a brief outage) never makes
maintenance reclaim a live worker's jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shared import queue
from shared.db import Database
from shared.service import Loop


class Heartbeat(Loop):
    def __init__(
        self, db: Database, worker_id: str, *, interval: float, db_timeout: float,
        held: Callable[[], set[int]], on_lost: Callable[[set[int]], None],
    ) -> None:
        # A failed beat is tried again well within the interval: a missed beat must not
        # add up to the stall timeout (twice the interval at least).
        super().__init__(db, "heartbeat", interval=interval, immediate=False,
                         first=min(1.0, interval / 2), cap=interval / 2)
        self._worker_id = worker_id
        self._db_timeout = db_timeout
        self._held = held
        self._on_lost = on_lost

    async def work(self) -> None:
        await self.beat()

    async def beat(self) -> None:
        """Mark every held job alive; cancel the handlers of those no longer held."""
        ids = self._held()
        if not ids:
            return
        async with asyncio.timeout(self._db_timeout):
            alive = await queue.heartbeat(self.db, ids, self._worker_id)
        lost = ids - alive
        if lost:
            self._on_lost(lost)
