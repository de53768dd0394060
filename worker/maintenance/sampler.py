"""Sampling queue depth and fleet load for the dashboard's charts, every
``MS8_SAMPLE_SECONDS`` (``shared.queue.record_samples``: one statement).

A sample is not work done, so the task reports no rows: the maintenance log line and
counter stay for what changed something."""

from __future__ import annotations

from dataclasses import dataclass

from shared import queue
from shared.conn import Conn
from shared.db import Database


@dataclass
class Sampler:
    db: Database
    interval: float
    # Workers seen this recently count in the fleet's slots (three registry touches).
    seen_within: float
    name: str = "sampler"

    async def run(self, conn: Conn) -> tuple[int, bool]:
        await queue.record_samples(self.db, seen_within=self.seen_within, conn=conn)
        return 0, False
