"""Deleting finished jobs (completed, failed, cancelled) kept longer than their queue's
retention, one small chunk per statement, oldest first (``shared.queue.prune_history``)."""

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
        return deleted, deleted >= self.chunk
