"""Helpers for the schedule tests: notifications of the schedules channel, firing rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import orjson
import pytest_asyncio

from shared.db import Database


class ScheduleNotices:
    """Names carried by NOTIFYs on <schema>.schedules, in delivery order."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.arrived = asyncio.Event()

    def __call__(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.names.append(orjson.loads(payload)["name"])
        self.arrived.set()


@pytest_asyncio.fixture
async def schedule_notices(db: Database) -> AsyncIterator[ScheduleNotices]:
    notices = ScheduleNotices()
    conn = await db.connect_direct()
    await conn.add_listener(db.channels.schedules, notices)
    yield notices
    await conn.close()


async def arm_in_the_past(db: Database, name: str, at: datetime) -> None:
    """Pretend the schedule has existed since ``at`` (tests drive fire_due with old clocks)."""
    await db.pool.execute(
        f'UPDATE "{db.schema}".schedules SET armed_at = $2 WHERE name = $1', name, at)


async def firing_rows(db: Database, name: str) -> list[Any]:
    return await db.pool.fetch(
        f'SELECT * FROM "{db.schema}".firings WHERE schedule = $1 ORDER BY fire_time', name)


async def jobs_of(db: Database, queue_name: str) -> list[Any]:
    return await db.pool.fetch(
        f'SELECT id, data, priority, singleton_key FROM "{db.schema}".jobs WHERE queue = $1 '
        "ORDER BY id", queue_name)
