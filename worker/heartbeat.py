"""Keeping the worker's jobs alive: one statement per interval for all of them.

Every ``interval`` the worker marks every job it holds (running, or finished and waiting
to be reported) as alive; with no job held, nothing is sent. The statement returns the
jobs the worker still holds: those missing were cancelled, reclaimed by maintenance or
timed out meanwhile, and their handlers are cancelled (``on_lost``), since their result
would be refused anyway and another worker may already run them.

The interval is at most half the stall timeout (checked in settings), so one missed beat
(a slow statement, a brief outage) never makes maintenance reclaim a live worker's jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shared import queue
from shared.db import Database, is_connection_error
from shared.logging import get_logger

log = get_logger(__name__)


class Heartbeat:
    def __init__(
        self, db: Database, worker_id: str, *, interval: float, db_timeout: float,
        held: Callable[[], set[int]], on_lost: Callable[[set[int]], None],
    ) -> None:
        self._db = db
        self._worker_id = worker_id
        self._interval = interval
        self._db_timeout = db_timeout
        self._held = held
        self._on_lost = on_lost

    async def run(self) -> None:
        """Beat every interval until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.beat()

    async def beat(self) -> None:
        ids = self._held()
        if not ids:
            return
        try:
            async with asyncio.timeout(self._db_timeout):
                alive = await queue.heartbeat(self._db, ids, self._worker_id)
        except Exception as error:
            if not is_connection_error(error):
                log.exception("heartbeat failed")
            else:
                self._db.outage.report("heartbeat", error)
            return
        lost = ids - alive
        if lost:
            self._on_lost(lost)
