"""The batch safety net: finish sealed batches whose last child ended while the process
that should have finished the batch died (``shared.queue.finish_pending_batches``)."""

from __future__ import annotations

from dataclasses import dataclass

from shared import queue
from shared.conn import Conn
from shared.db import Database


@dataclass
class BatchFinisher:
    db: Database
    interval: float
    limit: int = 1000
    name: str = "batches"

    async def run(self, conn: Conn) -> tuple[int, bool]:
        finished = await queue.finish_pending_batches(self.db, self.limit, conn=conn)
        return len(finished), False
