"""This worker's life, made visible to the database: a session lock held for as long as
the worker lives, on a direct connection of its own.

PostgreSQL releases a session lock the moment the session ends, however it ends (the
process killed, its host gone once the keepalives fail), so maintenance sees a dead
worker in ``pg_locks`` within a second and hands its jobs back
(``worker.maintenance.liveness``), instead of waiting for their heartbeats to go stale.

    connecting ──► try the lock ──granted──► holding (ping every check interval) ──┐
        ▲            │ held elsewhere: try again           │ connection lost          │
        │            └─────────────┘                       ▼                          │
        └───────────── back off (cut short when the database is back) ◄──────────────┘

The lock is held elsewhere only while this worker's previous session lingers (its
connection died without the server noticing yet) or another process runs with the same
worker id; either way the lock counts as held, so nothing is taken back meanwhile.

A lost connection releases the lock while the worker lives: maintenance waits a few
checks before it takes anything back, and each time the lock is held again
``on_held`` lets the worker check at once which jobs it still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from shared.conn import Conn
from shared.db import Database
from shared.logging import get_logger
from shared.service import Service

log = get_logger(__name__)

RETRY_SECONDS = 1.0  # between tries of a lock held by another session


class SessionLock(Service):
    def __init__(
        self, db: Database, worker_id: str, *, check_seconds: float,
        on_held: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(db, "session lock", first=0.1, cap=5.0, db_error="session lock lost")
        self._worker_id = worker_id
        self._check_seconds = check_seconds
        self._on_held = on_held
        self._conn: Conn | None = None
        self.held = asyncio.Event()
        self.sessions = 0

    async def stop(self) -> None:
        """Release the lock (by ending the session) and stop."""
        await super().stop()
        await self._close()

    async def run(self) -> None:
        """Connect, take the lock, and hold it until the connection is lost."""
        lost = asyncio.Event()
        conn = await self.db.connect_direct()
        self._conn = conn
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.fetchrow(self.db.queries.lock_session, "1s",
                            f"ms8-jobs worker {self._worker_id}"[:63])
        await self._acquire(conn, lost)
        self.backoff.reset()
        await self._hold(conn, lost)

    async def failed(self, error: Exception) -> None:
        self.held.clear()
        await self._close()

    async def _acquire(self, conn: Conn, lost: asyncio.Event) -> None:
        said = False
        while not await conn.fetchval(self.db.queries.worker_lock, self._worker_id):
            if not said:
                said = True
                log.warning("session lock held by another session (a previous one of this "
                            "worker, not yet seen gone, or a worker with the same id); "
                            "trying again", worker_id=self._worker_id)
            await self._wait(lost, RETRY_SECONDS)
        self.sessions += 1
        self.held.set()
        if said or self.sessions > 1:
            log.info("session lock held again", worker_id=self._worker_id)
        if self._on_held is not None:
            self._on_held()

    async def _hold(self, conn: Conn, lost: asyncio.Event) -> None:
        """Ping every check interval until the connection is lost."""
        while True:
            await self._wait(lost, self._check_seconds)
            await conn.fetchval(self.db.queries.ping, timeout=self._check_seconds + 5)

    async def _wait(self, lost: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await lost.wait()
        if lost.is_set():
            raise ConnectionError("the session lock's connection was lost")

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        await self.db.close_direct(conn)
