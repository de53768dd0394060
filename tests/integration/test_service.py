"""The lifecycle every long-running piece shares (``shared.service``): a crash is logged
once and the service runs again after a backoff; a lost connection is an outage report,
not a traceback; ``stop()`` ends a pause at once and can be called any number of times."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
import structlog

from shared.conn import Conn
from shared.db import Database
from shared.listener import Listener
from shared.service import Loop, RetryLater
from tests.support import wait_until

# A hang guard for stop(): far shorter than the pauses the tests set up (an hour).
HANG_GUARD = 60


class Bug(RuntimeError):
    """What a service never expects."""


class Pinging(Loop):
    """Pings on a direct connection of its own each time it is woken; the first
    ``crashes`` passes raise ``Bug`` instead."""

    def __init__(self, db: Database, *, crashes: int = 0, first: float = 0.01) -> None:
        super().__init__(db, "pinging", interval=None, first=first, cap=1.0)
        self.crashes = crashes
        self.passes = 0
        self.conn: Conn | None = None

    async def work(self) -> None:
        if self.crashes:
            self.crashes -= 1
            raise Bug("a bug in one pass")
        if self.conn is None:
            self.conn = await self.db.connect_direct()
        await self.conn.fetchval(self.db.queries.ping)
        self.passes += 1

    async def failed(self, error: Exception) -> None:
        conn, self.conn = self.conn, None
        await self.db.close_direct(conn)

    async def stop(self) -> None:
        await super().stop()
        await self.failed(Bug("stopped"))


def failures_logged(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "service failed; restarting it"]


async def direct_sessions(db: Database) -> int:
    return int(await db.pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = 'ms8-jobs direct' AND datname = current_database()"))


async def test_a_crash_is_logged_once_and_the_service_runs_again_after_a_backoff(
    db: Database,
) -> None:
    service = Pinging(db, crashes=2, first=0.01)
    with structlog.testing.capture_logs() as logs:
        await service.start()
        try:
            await wait_until(lambda: service.passes >= 1, message="a pass after the crashes")
            assert service.running and service.failures == 2
        finally:
            await service.stop()
    crashes = failures_logged(logs)
    # One line per crash, each with its traceback; the second waited twice as long.
    assert [(e["service"], e["retry_in"], e["log_level"]) for e in crashes] == [
        ("pinging", 0.01, "error"), ("pinging", 0.02, "error")]
    assert all(e.get("exc_info") for e in crashes)
    assert service.backoff.delay == 0.01  # a good pass starts the backoff over


async def test_a_lost_connection_is_an_outage_report_and_is_retried_without_a_traceback(
    db: Database,
) -> None:
    service = Pinging(db)
    with structlog.testing.capture_logs() as logs:
        await service.start()
        try:
            await wait_until(lambda: service.passes == 1, message="a first ping")
            killed = await db.pool.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'ms8-jobs direct' AND datname = current_database()")
            assert killed == 1
            service.wake()  # the next ping meets the connection gone
            await wait_until(lambda: service.failures == 1, message="the ping failed")
            service.wake()
            await wait_until(lambda: service.passes >= 2, message="a ping on a new connection")
            await wait_until(lambda: not db.outage.active, message="the outage check over")
        finally:
            await service.stop()
    lost = [e for e in logs if e["event"] == "database connection lost"]
    assert [e["what"] for e in lost] == ["pinging"]
    assert db.outage.outages == 0  # the database answered all along
    assert failures_logged(logs) == []
    assert not [e for e in logs if e.get("exc_info")], "a traceback was logged"


class Polite(Loop):
    """Asked to stop rather than cancelled: it ends at the end of its pass or rest."""

    def interrupt(self, task: asyncio.Task[None]) -> None:
        self.wake()


@pytest.mark.parametrize("kind", [Loop, Polite])
async def test_stop_during_the_backoff_returns_without_waiting_for_it(
    db: Database, kind: type[Loop],
) -> None:
    attempts = 0

    async def divide_by_zero() -> None:
        nonlocal attempts
        attempts += 1
        try:
            await db.pool.fetchval("SELECT 1 / 0")
        except asyncpg.PostgresError as error:
            raise RetryLater("the division failed", error) from error

    service = kind(db, "dividing", interval=None, first=3600, cap=3600, work=divide_by_zero)
    with structlog.testing.capture_logs() as logs:
        await service.start()
        await wait_until(lambda: service.failures == 1, message="the first failure")
        async with asyncio.timeout(HANG_GUARD):
            await service.stop()
    assert not service.running and attempts == 1
    said = [e for e in logs if e["event"] == "the division failed"]
    assert [(e["service"], e["log_level"]) for e in said] == [("dividing", "warning")]
    assert "division by zero" in said[0]["error"]
    assert not [e for e in logs if e.get("exc_info")], "a deliberate retry has no traceback"


async def test_stop_is_idempotent_and_ends_what_the_service_held(db: Database) -> None:
    listener = Listener(db, ["wakeup"], lambda _channel, _payload: None)
    await listener.stop()  # never started: nothing to do
    await listener.start()
    assert listener.running and await direct_sessions(db) == 1
    async with asyncio.timeout(HANG_GUARD):
        await asyncio.gather(listener.stop(), listener.stop())  # at once
        await listener.stop()  # and again
    assert not listener.running
    await wait_until(lambda: _no_direct_sessions(db), message="the LISTEN session closed")
    await listener.start()  # a stopped service starts again
    try:
        assert listener.listening.is_set() and await direct_sessions(db) == 1
    finally:
        await listener.stop()


async def _no_direct_sessions(db: Database) -> bool:
    return await direct_sessions(db) == 0


@pytest.mark.parametrize("db_error", ["dividing failed", None])
async def test_an_error_the_database_returned_is_its_warning_or_a_traceback(
    db: Database, db_error: str | None,
) -> None:
    async def divide_by_zero() -> None:
        await db.pool.fetchval("SELECT 1 / 0")

    service = Loop(db, "dividing", interval=None, first=3600, cap=3600, work=divide_by_zero,
                   db_error=db_error)
    with structlog.testing.capture_logs() as logs:
        await service.start()
        await wait_until(lambda: service.failures == 1, message="the first failure")
        await service.stop()
    said = [e for e in logs if e.get("service") == "dividing"]
    if db_error is None:
        assert [(e["event"], bool(e.get("exc_info"))) for e in said] == [
            ("service failed; restarting it", True)]
    else:
        assert [(e["event"], e.get("exc_info"), e["error"]) for e in said] == [
            ("dividing failed", None, "division by zero")]
