"""The worker registry: a row per running worker (id, host, pid, queues, concurrency,
started, last seen), so that the fleet can be seen and dead workers forgotten.

A worker upserts its row at start and every ``interval`` (an upsert, not an update, so a
worker that maintenance forgot during a long outage comes back), and deletes it when it
stops. The row says whether the worker holds its session lock while it lives
(``session_lock``, see ``worker.liveness``): maintenance hands back at once the jobs of a
worker whose lock is gone. Without one (poll-only mode) its jobs are reclaimed by their
stale heartbeats only.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

import orjson

from shared.conn import Conn
from shared.db import Database, is_connection_error
from shared.logging import get_logger, mask_secrets
from shared.service import Loop

log = get_logger(__name__)


class Registration(Loop):
    """This worker's row in the registry, touched every ``interval`` (a failed touch is
    tried again after a backoff shorter than half the interval)."""

    def __init__(
        self, db: Database, worker_id: str, queues: Mapping[str, int], *, interval: float,
        db_timeout: float, session_lock: bool = False,
    ) -> None:
        super().__init__(db, "registry", interval=interval, immediate=False,
                         first=min(1.0, interval / 2), cap=interval / 2)
        self._worker_id = worker_id
        self._queues = dict(queues)
        self._db_timeout = db_timeout
        self._session_lock = session_lock

    async def register(self) -> None:
        """Write (or refresh) the row; raises when the database cannot be reached."""
        async with asyncio.timeout(self._db_timeout):
            await self.db.pool.fetchrow(
                self.db.queries.upsert_worker, self._worker_id, socket.gethostname(),
                os.getpid(), orjson.dumps(self._queues).decode(), sum(self._queues.values()),
                self._session_lock)

    async def work(self) -> None:
        await self.register()

    async def deregister(self, timeout: float | None = None) -> bool:
        """Delete the row; False when the database could not be reached in time."""
        try:
            async with asyncio.timeout(self._db_timeout if timeout is None else timeout):
                await self.db.pool.fetchval(self.db.queries.delete_worker, self._worker_id)
        except Exception as error:
            if not is_connection_error(error):
                raise
            log.warning("could not deregister; maintenance will forget this worker",
                        error=mask_secrets(str(error)))
            return False
        return True


async def reap_workers(
    db: Database, unseen_seconds: float, *, conn: Conn | None = None,
) -> list[str]:
    """Forget the workers not seen for ``unseen_seconds``; returns their ids."""
    rows = await (conn or db.pool).fetch(db.queries.reap_workers, unseen_seconds)
    return [row["id"] for row in rows]
