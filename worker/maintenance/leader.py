"""Maintenance leadership: a session advisory lock per schema, on a direct connection.

Every worker that runs maintenance campaigns; one wins and the others wait *inside* the
lock statement, so a waiting worker sends nothing while it waits (one statement per
``wait_seconds``, the lock timeout that bounds each wait so that a dead connection is
noticed) and takes over the moment the holder's session ends:

    connecting ──► waiting for the lock ──granted──► leading (maintenance runs) ──┐
        ▲              │ lock_timeout: wait again        │ connection lost / error │
        │              └────────────┘                    ▼                        │
        └────────────── back off ◄──────────── stepped down ◄─────────────────────┘

- A leader killed outright loses the lock when the server sees its socket close; a leader
  whose host vanishes loses it after the keepalives set on the session fail (seconds).
- A leader stopping gracefully unlocks and closes, so the next one starts at once.
- Maintenance runs on the lock's own connection, so every pass doubles as its health
  check: a leader that cannot reach the database stops leading.

The lock needs a real session, so it is taken on a direct connection, never through the
pool (a pooler in transaction mode would hand the session to someone else). Where there
is no session connection at all (poll-only mode), ``PassLeadership`` leads one pass at a
time instead: each task runs in a pooled transaction that first takes the same lock as
a transaction lock, or skips its turn. Correctness never rests on there being one
leader: every maintenance statement is set-based.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg

from shared.conn import Conn
from shared.db import Database
from shared.logging import get_logger
from shared.service import Service
from worker.maintenance.service import MaintenanceService, Task

log = get_logger(__name__)


class _Leader(Service):
    """What both kinds of leadership share: the state, its log lines, and stepping down
    when stopped."""

    def __init__(
        self, db: Database, worker_id: str, on_change: Callable[[bool], None] | None,
    ) -> None:
        super().__init__(db, "maintenance leadership", first=0.2, cap=10.0,
                         db_error="maintenance leadership interrupted")
        self._worker_id = worker_id
        self._on_change = on_change
        self.is_leader = False
        self.elected = asyncio.Event()
        self.terms = 0

    async def stop(self) -> None:
        """Step down (so that another worker takes over at once) and stop campaigning."""
        await super().stop()
        self._set_leader(False)

    def _set_leader(self, leading: bool) -> None:
        if leading == self.is_leader:
            return
        self.is_leader = leading
        if leading:
            self.terms += 1
            self.elected.set()
            log.info("maintenance leadership acquired", worker_id=self._worker_id)
        else:
            self.elected.clear()
            log.info("maintenance leadership released", worker_id=self._worker_id)
        if self._on_change is not None:
            self._on_change(leading)


class Leadership(_Leader):
    """The session lock, held on a direct connection while maintenance runs on it."""

    def __init__(
        self, db: Database, worker_id: str, *,
        lead: Callable[[Conn], Coroutine[Any, Any, None]], wait_seconds: float = 60.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        super().__init__(db, worker_id, on_change)
        self._lead = lead
        self._wait_ms = max(int(wait_seconds * 1000), 1)
        self._conn: Conn | None = None

    async def run(self) -> None:
        """Campaign: connect, wait for the lock, lead until the connection is lost."""
        lost = asyncio.Event()
        try:
            conn = await asyncio.wait_for(
                self.db.connect_direct(), self.db.settings.connect_timeout + 1)
            self._conn = conn
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.fetchrow(
                self.db.queries.lock_session, f"{self._wait_ms}ms",
                f"ms8-jobs leader {self._worker_id}"[:63])
            await self._acquire(conn)
            self.backoff.reset()
            self._set_leader(True)
            await self._hold(conn, lost)
            raise ConnectionError("the leader's connection was lost")
        except asyncio.CancelledError:
            await self._close(graceful=True)
            raise

    async def failed(self, error: Exception) -> None:
        await self._close(graceful=False)

    async def _acquire(self, conn: Conn) -> None:
        while True:
            try:
                await conn.fetchval(self.db.queries.leader_acquire, self.db.schema)
                return
            except asyncpg.LockNotAvailableError:
                continue  # lock_timeout: the connection works; keep waiting

    async def _hold(self, conn: Conn, lost: asyncio.Event) -> None:
        """Run maintenance until it fails or the connection is lost."""
        leading = asyncio.create_task(self._lead(conn), name="maintenance")
        watching = asyncio.create_task(lost.wait())
        try:
            await asyncio.wait({leading, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (leading, watching):
                task.cancel()
            for task in (leading, watching):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if leading.done() and not leading.cancelled() and leading.exception() is not None:
            raise leading.exception()  # type: ignore[misc]

    async def _close(self, *, graceful: bool) -> None:
        conn, self._conn = self._conn, None
        was_leader = self.is_leader
        self._set_leader(False)
        if conn is None or conn.is_closed():
            return
        if graceful and was_leader:
            try:
                await asyncio.wait_for(
                    conn.fetchval(self.db.queries.leader_release, self.db.schema), 2)
            except Exception:
                conn.terminate()
        await self.db.close_direct(conn)


class PassLeadership(_Leader):
    """Lead one maintenance pass at a time, through the pool (no session needed)."""

    def __init__(
        self, db: Database, worker_id: str, *, service: MaintenanceService,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        super().__init__(db, worker_id, on_change)
        self._service = service

    async def run(self) -> None:
        """Run the maintenance schedule, each task trying for the pass lock."""
        await self._service.run(self._execute)

    async def failed(self, error: Exception) -> None:
        self._set_leader(False)

    async def _execute(self, task: Task) -> tuple[int, bool] | None:
        async with self.db.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(self.db.queries.leader_try_pass, self.db.schema):
                self._set_leader(False)
                return None
            self._set_leader(True)
            return await task.run(conn)
