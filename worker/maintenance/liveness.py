"""Taking back at once the jobs of workers that died: registered workers whose session
lock (``worker.liveness``) nobody holds any more.

Every ``interval`` the registered workers that hold a lock while they live are checked
against ``pg_locks``, in one statement. A worker whose lock is missing on ``CHECKS``
checks in a row is dead: its active jobs go back to the queue without spending an attempt
(a crash is counted instead, see ``shared.queue.take_back_jobs``) and its registry row is
forgotten. The checks in a row are the grace for a live worker whose lock connection
dropped and is reconnecting, and for one that registered but has not taken its lock yet;
a new leader starts counting afresh, which only delays.

Workers without a session lock (poll-only mode, older code) are left to the stall timeout
(``rescuer``), which also stays the net for a worker that lives but hangs.

An idle fleet is not checked every second: when the check finds no job active, none due
and no worker missing its lock, nothing can need taking back until a job starts, and a
job starts only once it is due (the check learns when the next one will be), or after a
send or a resume, which NOTIFY every worker. So the check rests until then, at most
``rest_max`` seconds, and any wake-up notification (``nudged``) brings it back to every
``interval``. A worker whose notifications cannot arrive (poll-only mode) never rests.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from shared import queue
from shared.conn import Conn
from shared.db import Database
from shared.logging import get_logger

log = get_logger(__name__)

CHECKS = 3  # checks in a row without the lock: a worker is dead (about two intervals)


@dataclass
class Liveness:
    db: Database
    interval: float
    limit: int = 1000
    rest_max: float = 0.0  # 0: never rest
    name: str = "liveness"
    _rest_until: float | None = None  # monotonic time the next check may wait for
    _nudges: int = 0  # notifications seen: one during a check forbids the rest it found
    _checks: dict[str, int] = field(default_factory=dict)  # checks in a row without a lock
    _since: dict[str, float] = field(default_factory=dict)  # first seen without one

    async def run(self, conn: Conn) -> tuple[int, bool]:
        nudges = self._nudges
        row = await conn.fetchrow(self.db.queries.liveness_check, self.interval)
        assert row is not None
        now = time.monotonic()
        unlocked = list(row["unlocked"])
        quiet = not unlocked and not row["busy"] and nudges == self._nudges
        self._rest_until = self._rest_end(now, row["next_start_in"]) if quiet else None
        self._checks = {w: self._checks.get(w, 0) + 1 for w in unlocked}
        self._since = {w: self._since.get(w, now) for w in unlocked}
        dead = sorted(w for w, checks in self._checks.items() if checks >= CHECKS)
        if not dead:
            return 0, False
        taken = await queue.take_back_jobs(self.db, dead, limit=self.limit, conn=conn)
        more = len(taken) >= self.limit
        log.warning(
            "took back the jobs of dead workers", workers=dead, jobs=len(taken),
            states=dict(Counter(r.result.state for r in taken)),
            poisoned=[r.id for r in taken if r.poisoned],
            unlocked_seconds=round(now - min(self._since[w] for w in dead), 2))
        if more:
            return len(taken), True
        await conn.fetch(self.db.queries.forget_workers, dead)
        for worker_id in dead:
            del self._checks[worker_id], self._since[worker_id]
        return len(taken) + len(dead), False

    def _rest_end(self, now: float, next_start_in: float | None) -> float | None:
        if self.rest_max <= 0 or (next_start_in is not None and next_start_in <= self.interval):
            return None
        return now + (self.rest_max if next_start_in is None
                      else min(self.rest_max, next_start_in))

    def rest(self) -> float:
        """Seconds until the next check: the interval, or longer while the fleet is idle."""
        if self._rest_until is None:
            return self.interval
        return max(self.interval, self._rest_until - time.monotonic())

    def nudged(self) -> bool:
        """A job was sent or a queue resumed: check every interval again. True when the
        check was resting (its next run should come sooner)."""
        self._nudges += 1
        resting, self._rest_until = self._rest_until is not None, None
        return resting
