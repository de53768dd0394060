"""Forgetting dead workers: registry rows not touched for a long while (the worker was
killed without deregistering, and held no session lock that ``liveness`` would have seen
go). Their jobs are not touched here: the rescuer reclaims them by their stale
heartbeats."""

from __future__ import annotations

from dataclasses import dataclass

from shared.conn import Conn
from shared.db import Database
from shared.logging import get_logger
from worker.registry import reap_workers

log = get_logger(__name__)


@dataclass
class Reaper:
    db: Database
    unseen_seconds: float
    interval: float
    name: str = "reaper"

    async def run(self, conn: Conn) -> tuple[int, bool]:
        forgotten = await reap_workers(self.db, self.unseen_seconds, conn=conn)
        if forgotten:
            log.info("forgot dead workers", workers=forgotten)
        return len(forgotten), False
