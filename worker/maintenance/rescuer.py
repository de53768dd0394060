"""Reclaiming jobs nobody looks after: active jobs whose heartbeat went stale (their
worker died, or lost the database for longer than the stall timeout) and jobs running
past their run timeout plus a grace (their worker should have stopped them and did not).

A stalled job is a crash: it waits again at once, its attempt given back, until it has
crashed its queue's crash limit of workers. A job past its run timeout is a failure: it
retries while attempts are left, the attempt counted (``shared.queue.reclaim_lost_jobs``).
The run-timeout case is the safety net of the worker's own timeout, which acts first;
the stall timeout is the net of ``liveness``, which sees dead workers within seconds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from shared import queue
from shared.conn import Conn
from shared.db import Database
from shared.logging import get_logger

log = get_logger(__name__)


@dataclass
class Rescuer:
    db: Database
    stall_seconds: float
    timeout_grace_seconds: float
    interval: float
    limit: int = 1000
    name: str = "rescuer"

    async def run(self, conn: Conn) -> tuple[int, bool]:
        reclaimed = await queue.reclaim_lost_jobs(
            self.db, stall_seconds=self.stall_seconds,
            timeout_grace_seconds=self.timeout_grace_seconds, limit=self.limit, conn=conn)
        if reclaimed:
            log.warning(
                "reclaimed jobs", count=len(reclaimed),
                reasons=dict(Counter(r.reason for r in reclaimed)),
                workers=sorted({r.worker_id or "?" for r in reclaimed}),
                failed_for_good=sum(1 for r in reclaimed if r.result.state == "failed"),
                poisoned=[r.id for r in reclaimed if r.poisoned])
        return len(reclaimed), len(reclaimed) >= self.limit
