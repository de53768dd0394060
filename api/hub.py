"""One LISTEN per API process, fanned out in memory to every open event stream.

The hub listens on ``events`` (state changes and progress, by job id) and ``wakeup``
(jobs became waiting in a queue; passed on as ``{"state": "waiting", "queue": ...}``).
Each SSE client is a ``Subscription`` with a predicate (which notifications it wants) and a
bounded queue. The hub's ``Listener`` delivers every notification of the ``events``
channel, in commit order, to the queues of the subscriptions that want it; a client too
slow to keep up does not slow the others: its queue is emptied and it gets one ``resync``
(re-read everything) instead. After the listener lost its connection and LISTENed again,
every subscription gets a ``resync`` too, since notifications may have been missed.

Notifications are hints: streams re-read the database on each one (``api/events.py``),
so what a client sees is always the state of the table, never a guess.

The same LISTEN carries ``sessions`` (a dashboard session was logged out) to the
process's ``Revocations``, which reads the table again on every (re)connect, after
LISTEN, so that no logout is missed while the listener was away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from api.revocations import Revocations
from shared.db import Database
from shared.listener import Listener

Payload = dict[str, Any]
RESYNC: Payload = {"state": "resync", "ids": []}


class Subscription:
    """One client's view of the notifications; ``close()`` (idempotent) ends it."""

    def __init__(self, hub: EventHub, wants: Callable[[Payload], bool], maxsize: int) -> None:
        self._hub = hub
        self._wants = wants
        self._queue: asyncio.Queue[Payload] = asyncio.Queue(maxsize)

    def close(self) -> None:
        self._hub._subscriptions.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def offer(self, payload: Payload) -> None:
        if payload is not RESYNC and not self._wants(payload):
            return
        try:
            self._queue.put_nowait(payload)
        except asyncio.QueueFull:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(RESYNC)

    async def next(self, timeout: float) -> Payload | None:
        """The next notification, or None when ``timeout`` seconds pass without one."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    def drain(self) -> list[Payload]:
        """Whatever else is already queued (to coalesce a burst into one re-read)."""
        items = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items


class EventHub:
    def __init__(self, db: Database, *, queue_size: int = 1000,
                 revocations: Revocations | None = None) -> None:
        self._db = db
        self._subscriptions: set[Subscription] = set()
        self._queue_size = queue_size
        self._connections = 0
        self._revocations = revocations
        self._loaded = asyncio.Event()  # the revocations, read after the first LISTEN
        self.listener = Listener(db, ["events", "wakeup", "sessions"], self._deliver,
                                 on_connect=self._on_connect)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    async def start(self) -> None:
        """Listen; returns once listening, and the revocations read (no request is served
        before a logged-out session is known as such)."""
        await self.listener.start()
        if self._revocations is not None:
            await self._loaded.wait()

    async def stop(self) -> None:
        await self.listener.stop()

    def subscribe(self, wants: Callable[[Payload], bool]) -> Subscription:
        """A new subscription; use it as a context manager, or ``close()`` it."""
        subscription = Subscription(self, wants, self._queue_size)
        self._subscriptions.add(subscription)
        return subscription

    def _deliver(self, channel: str, payload: Payload) -> None:
        if channel == "sessions":
            if self._revocations is not None:
                self._revocations.heard(payload)
            return
        if channel == "wakeup":  # jobs became waiting in a queue (sent, retried, resumed)
            payload = {"state": "waiting", "queue": payload.get("queue"), "ids": []}
        for subscription in list(self._subscriptions):
            subscription.offer(payload)

    async def _on_connect(self) -> None:
        if self._revocations is not None:
            await self._revocations.load(self._db)
            self._loaded.set()
        self._connections += 1
        if self._connections > 1:
            for subscription in list(self._subscriptions):
                subscription.offer(RESYNC)
