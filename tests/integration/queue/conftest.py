"""Helpers for the queue-core tests: a LISTEN connection that records notifications."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest_asyncio

from shared.db import Database


class Recorder:
    """Collects (channel, payload) notifications of some channels, in delivery order."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.arrived = asyncio.Event()

    def __call__(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        self.received.append((channel.split(".", 1)[1], orjson.loads(payload)))
        self.arrived.set()

    def on(self, channel: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.received if name == channel]


@pytest_asyncio.fixture
async def notifications(db: Database) -> AsyncIterator[Recorder]:
    recorder = Recorder()
    conn = await db.connect_direct()
    for channel in ("wakeup", "events", "cancel"):
        await conn.add_listener(db.channels.name(channel), recorder)
    yield recorder
    await conn.close()
