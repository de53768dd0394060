"""A worker process across a PostgreSQL outage: it says so once, and is back at work as
soon as the server accepts connections again (the time it took is printed, not asserted)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from devstack.embedded import EmbeddedPostgres
from shared import queue
from shared.db import Database, is_connection_error, open_database
from tests import conftest as base
from tests.e2e.conftest import start_migrated
from tests.e2e.processes import Processes
from tests.support import wait_until

pytestmark = pytest.mark.slow

FAST = {
    "MS8_POOL_MIN": "2",  # a floor the pool tries to restore during the outage
    "MS8_HEARTBEAT_SECONDS": "0.2",
    "MS8_STALL_SECONDS": "30",
    "MS8_LISTEN_CHECK_SECONDS": "1",
    "MS8_LEADER_WAIT_SECONDS": "1",
}


async def _completed(db: Database, job_id: int) -> bool:
    try:
        return (await queue.get_job(db, job_id)).state == "completed"
    except Exception as error:
        if is_connection_error(error):
            return False
        raise


async def test_after_a_postgres_outage_the_worker_resumes_having_said_so_once(
    own_cluster: EmbeddedPostgres, processes: Processes,
) -> None:
    url = await start_migrated(own_cluster)
    db = await open_database(base.test_settings(url), "test")
    worker = processes.start("worker", "--queues", "echo,sleep", "--id", "w", name="w",
                             DATABASE_URL=url, **FAST)
    await worker.wait_for_log("worker started")
    # One job runs across the outage; its result waits for the database to come back.
    across = await queue.send(db, "sleep", {"seconds": 2})
    await wait_until(lambda: _active(db, across.id), timeout=20, message="job started")
    await db.close()

    await asyncio.to_thread(own_cluster.stop)
    await worker.wait_for_log("database unreachable", timeout=20)
    await asyncio.sleep(4)  # many failed probes and reconnects of the pool's floor
    await asyncio.to_thread(own_cluster.start)
    ready = time.time()

    db = await open_database(base.test_settings(url), "test")
    try:
        after = await queue.send(db, "echo", {"after": True})
        await wait_until(lambda: _completed(db, after.id), timeout=20,
                         message="a job sent after the restart completed")
        await wait_until(lambda: _completed(db, across.id), timeout=20,
                         message="the job that ran across the outage reported")
        back = await worker.wait_for_log("database back", timeout=10)
        listening = await worker.wait_for_log("listening again; fetching to catch up")
        print(f"\nPostgreSQL ready → worker saw it back after "
              f"{_at(back) - ready:.2f} s, listening after {_at(listening) - ready:.2f} s")

        assert worker.running
        noisy = [(e["event"], e.get("what")) for e in worker.logs()
                 if e.get("level") in ("warning", "error", "critical")]
        assert noisy == [("database unreachable", noisy[0][1])], noisy
        assert not [e for e in worker.logs() if "exception" in e], "a traceback was logged"
        assert len(worker.find("database back")) == 1
        assert (await queue.get_job(db, across.id)).attempt == 1
        assert await worker.stop() == 0
    finally:
        await db.close()


async def _active(db: Database, job_id: int) -> bool:
    return (await queue.get_job(db, job_id)).state == "active"


def _at(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"])).timestamp()
