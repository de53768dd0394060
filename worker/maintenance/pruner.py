"""Deleting finished jobs (completed, failed, cancelled) kept longer than their queue's
retention, one small chunk per statement, oldest first (``shared.queue.prune_history``),
and with them the per-minute rollups and samples of that age
(``shared.queue.prune_timelines``, which keeps the last day whatever the retention)."""

from __future__ import annotations

from dataclasses import dataclass

from shared import queue
from shared.conn import Conn
from shared.db import Database


@dataclass
class Pruner:
    db: Database
    interval: float
    chunk: int = 1000
    name: str = "pruner"

    async def run(self, conn: Conn) -> tuple[int, bool]:
        deleted = await queue.prune_history(self.db, limit=self.chunk, conn=conn)
        timelines, more = await queue.prune_timelines(self.db, limit=self.chunk, conn=conn)
        return deleted + timelines, deleted >= self.chunk or more
