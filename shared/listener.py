"""LISTEN on a dedicated session connection that heals itself.

NOTIFY is a hint, never the only path: the connection is health-checked with a cheap
query under a timeout, a lost one is re-opened with backoff (cut short when the
process's outage watch sees the database back, ``shared.outage``; the retrying is
``shared.service``'s) and re-LISTENed, and every
(re)connection calls ``on_connect`` so that the owner fetches once to catch up on what it
missed while deaf.

    stopped ──start()──► connecting ──ok──► listening ──check fails / conn lost──┐
                            ▲   │ error: back off                                 │
                            │   └──────────┘                                      │
                            └─────────────────────────────────────────────────────┘
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from shared.channels import decode_payload
from shared.conn import Conn
from shared.db import Database
from shared.logging import get_logger
from shared.service import Service

log = get_logger(__name__)

Handler = Callable[[str, dict[str, Any]], None]


class Listener(Service):
    """Deliver notifications of ``channels`` (short names, e.g. "wakeup") to ``on_notify``.

    ``on_notify(channel, payload)`` runs in the event loop and must not block.
    ``on_connect()`` is awaited after each successful LISTEN, the first one included.
    """

    def __init__(
        self,
        db: Database,
        channels: Iterable[str],
        on_notify: Handler,
        *,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        health_interval: float = 5.0,
        health_timeout: float = 3.0,
        max_backoff: float = 10.0,
    ) -> None:
        super().__init__(db, "listener", first=0.1, cap=max_backoff,
                         db_error="listener connection lost")
        self._channels = {db.channels.name(c): c for c in channels}
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._health_interval = health_interval
        self._health_timeout = health_timeout
        self._conn: Conn | None = None
        self._lost = asyncio.Event()
        self.listening = asyncio.Event()
        self.reconnects = 0

    async def start(self) -> None:
        """Start listening in the background; returns once the first LISTEN succeeded."""
        await super().start()
        waiter = asyncio.create_task(self.listening.wait())
        ended = asyncio.create_task(self.finished())
        try:
            await asyncio.wait({waiter, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, ended):
                task.cancel()

    async def stop(self) -> None:
        await super().stop()
        self.listening.clear()
        await self._close()

    async def run(self) -> None:
        """Listen, then health-check the connection until it is lost."""
        await self._connect()
        self.backoff.reset()
        await self._watch()

    async def failed(self, error: Exception) -> None:
        self.listening.clear()
        await self._close()
        self.reconnects += 1

    async def _connect(self) -> None:
        self._lost.clear()
        conn = await self.db.connect_direct()
        self._conn = conn
        conn.add_termination_listener(lambda _conn: self._lost.set())
        for channel in self._channels:
            await conn.add_listener(channel, self._deliver)
        log.debug("listening", channels=sorted(self._channels.values()))
        self.listening.set()
        if self._on_connect is not None:
            await self._on_connect()

    async def _watch(self) -> None:
        """Health-check the connection until it is lost."""
        assert self._conn is not None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._health_interval)
            if self._lost.is_set() or self._conn.is_closed():
                raise ConnectionError("listener connection closed")
            await self._conn.fetchval(self.db.queries.ping, timeout=self._health_timeout)

    def _deliver(self, _conn: Any, _pid: int, channel: str, payload: object) -> None:
        short = self._channels.get(channel)
        if short is None:
            return
        try:
            self._on_notify(short, decode_payload(str(payload)))
        except Exception:
            log.exception("notification handler failed", channel=short)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        await self.db.close_direct(conn)

