"""The listener delivers notifications, and heals after its connection is killed."""

from __future__ import annotations

from typing import Any

from shared import queue
from shared.db import Database
from shared.listener import Listener
from tests.support import wait_until


async def test_delivers_and_reconnects_after_its_backend_is_terminated(db: Database) -> None:
    received: list[tuple[str, dict[str, Any]]] = []
    connects = 0

    async def on_connect() -> None:
        nonlocal connects
        connects += 1

    listener = Listener(db, ["wakeup"], lambda ch, p: received.append((ch, p)),
                        on_connect=on_connect, health_interval=0.2, health_timeout=1)
    await listener.start()
    try:
        assert connects == 1
        await queue.send(db, "one")
        await wait_until(lambda: received, message="first notification")
        assert received[0][0] == "wakeup" and received[0][1]["queue"] == "one"

        await db.pool.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'ms8-jobs direct' AND datname = current_database()")
        await wait_until(lambda: connects == 2, message="re-LISTEN after the kill")
        await queue.send(db, "two")
        await wait_until(lambda: any(p["queue"] == "two" for _, p in received))
        assert listener.reconnects >= 1
        # The database answered all along: a lost connection, not an outage.
        assert db.outage.outages == 0 and not db.outage.active
    finally:
        await listener.stop()
