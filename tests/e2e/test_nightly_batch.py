"""The nightly batch end to end: the stub as the microservices, real worker processes.

A firing of the daily-batch schedule (``run_now``, as the dashboard's "Run now" does)
fans out one collect-analytics job per user-role; the workers collect from the stub;
daily-batch-done writes the night's summary. The stub's admin endpoint stages the
outages and counts what reached each source.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio

from analytics import runs, user_roles
from analytics.fanout import COLLECT_QUEUE, night_of
from analytics.models import NightlyRun
from analytics.settings import DEFAULT_SOURCE_NAMES
from shared import queue
from shared.db import Database
from tests.conftest import SCHEMA
from tests.e2e.processes import Process, Processes
from tests.stub_server import StubServer, running_stub
from tests.support import wait_until

pytestmark = pytest.mark.slow

ANALYTICS = f'"{SCHEMA}_analytics"'
FAST = {
    "MS8_POOL_MIN": "1",
    "MS8_POOL_MAX": "6",
    "MS8_HEARTBEAT_SECONDS": "0.2",
    "MS8_STALL_SECONDS": "1.5",
    "MS8_RESCUE_SECONDS": "0.2",
    "MS8_LISTEN_CHECK_SECONDS": "1",
    "MS8_LEADER_WAIT_SECONDS": "1",
    "MS8_SOURCE_RETRY_DELAY": "0.01",
    "MS8_JOB_LOG_LEVEL": "debug",  # no line per job
}
QUEUES = f"{COLLECT_QUEUE}=50,daily-batch=1,daily-batch-done=1"


@pytest_asyncio.fixture
async def stub() -> AsyncIterator[StubServer]:
    async with running_stub("--latency-ms", "2") as server:
        yield server


def start_worker(processes: Processes, stub: StubServer, name: str, queues: str = QUEUES,
                 **env: str) -> Process:
    sources = ",".join(f"{s}={stub.base_url(s)}" for s in DEFAULT_SOURCE_NAMES)
    return processes.start("worker", "--queues", queues, "--id", name, name=name,
                           **{**FAST, "MS8_SOURCES": sources, **env})


async def run_the_night(db: Database, timeout: float = 180) -> NightlyRun:
    """Fire the daily-batch schedule now and wait for the night's summary."""
    firing = await queue.run_now(db, "daily-batch")
    night = night_of(firing.fire_time)

    async def finished() -> NightlyRun | None:
        try:
            run = await runs.get(db, night)
        except queue.NotFound:
            return None
        return run if run.finished_at is not None else None

    return await wait_until(finished, timeout=timeout, interval=0.2,
                            message=f"the summary of night {night}")


async def snapshot_rows(db: Database) -> list[dict[str, object]]:
    rows = await db.pool.fetch(f"SELECT status, missing FROM {ANALYTICS}.snapshots")
    return [{"status": r["status"], "missing": orjson.loads(r["missing"])} for r in rows]


async def collect_jobs_per_user_role(db: Database) -> Counter[int]:
    rows = await db.pool.fetch(
        f"SELECT data FROM \"{SCHEMA}\".jobs WHERE queue = $1 UNION ALL "
        f"SELECT data FROM \"{SCHEMA}\".history WHERE queue = $1", COLLECT_QUEUE)
    return Counter(orjson.loads(r["data"])["user_role_id"] for r in rows)


async def test_one_source_down_gives_1000_partial_snapshots_naming_it(
    db: Database, processes: Processes, stub: StubServer,
) -> None:
    await user_roles.seed(db, 1000)
    await stub.set("assessment", mode="down")
    for i in (1, 2):
        await start_worker(processes, stub, f"w{i}").wait_for_log("worker started")

    run = await run_the_night(db)

    assert (run.total, run.complete, run.partial, run.failed, run.cancelled) == (
        1000, 0, 1000, 0, 0)
    assert run.source_failures == {"assessment": 1000}
    assert run.sent == 1000 and run.duration_seconds is not None
    rows = await snapshot_rows(db)
    assert len(rows) == 1000
    assert {r["status"] for r in rows} == {"partial"}
    assert {tuple(m["source"] for m in r["missing"]) for r in rows} == {("assessment",)}
    batch = await queue.get_batch(db, run.batch_id or 0)
    assert batch.totals == queue.BatchTotals(completed=1000)
    assert await db.pool.fetchval(f"SELECT count(*) FROM {ANALYTICS}.nightly_runs") == 1
    [done] = await queue.list_jobs(db, queue="daily-batch-done")
    assert (done.state, done.output["partial"]) == ("completed", 1000)


async def test_every_source_down_the_jobs_retry_then_fail(
    db: Database, processes: Processes, stub: StubServer,
) -> None:
    await user_roles.seed(db, 200)
    await queue.create_queue(db, COLLECT_QUEUE, retry_limit=2, retry_delay_seconds=0.2,
                             retry_backoff=False)
    for source in DEFAULT_SOURCE_NAMES:
        await stub.set(source, mode="down")
    await start_worker(processes, stub, "w1").wait_for_log("worker started")

    run = await run_the_night(db)

    assert (run.total, run.complete, run.partial, run.failed) == (200, 0, 0, 200)
    assert await snapshot_rows(db) == []
    failed = await queue.list_jobs(db, queue=COLLECT_QUEUE, states=["failed"], limit=200)
    assert len(failed) == 200
    assert {j.attempt for j in failed} == {3}  # two retries, then failed
    assert all("every source failed" in (j.error_message or "") for j in failed)


async def test_run_twice_and_crashed_mid_fan_out_one_job_per_user_role(
    db: Database, processes: Processes, stub: StubServer,
) -> None:
    await user_roles.seed(db, 3000)
    # Only the fan-out runs here (its collect jobs wait), ten user-roles per chunk, so that
    # the worker can be killed between chunks.
    first = start_worker(processes, stub, "first", "daily-batch=2", MS8_FANOUT_CHUNK="10")
    await first.wait_for_log("worker started")
    firing = await queue.run_now(db, "daily-batch")
    night = night_of(firing.fire_time)

    async def sent() -> int:
        try:
            return (await runs.get(db, night)).sent
        except queue.NotFound:
            return 0

    async def some_chunks_sent() -> bool:
        return await sent() >= 200

    await wait_until(some_chunks_sent, timeout=60, message="a few chunks sent")
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert 0 < await sent() < 3000
    # A second job for the same night, sent while the first waits to be taken back.
    again = await queue.send(db, "daily-batch", {"night": night.isoformat()})
    second = start_worker(processes, stub, "second", "daily-batch=2", MS8_FANOUT_CHUNK="10")
    await second.wait_for_log("worker started")

    async def both_done() -> bool:
        jobs = [await queue.get_job(db, i) for i in (firing.job_id or 0, again.id)]
        return all(j.state == "completed" for j in jobs)

    await wait_until(both_done, timeout=120, interval=0.2, message="both fan-outs done")
    per_user_role = await collect_jobs_per_user_role(db)
    assert len(per_user_role) == 3000 and set(per_user_role.values()) == {1}
    run = await runs.get(db, night)
    assert (run.sent, run.state) == (3000, "running")
    assert (await queue.get_batch(db, run.batch_id or 0)).total == 3000
    outputs = [(await queue.get_job(db, i)).output for i in (firing.job_id or 0, again.id)]
    assert sum(o["sent_now"] for o in outputs) <= 3000
    assert {o["batch_id"] for o in outputs} == {run.batch_id}


async def test_a_hanging_source_gets_a_few_requests_before_its_breaker_opens(
    db: Database, processes: Processes, stub: StubServer,
) -> None:
    await user_roles.seed(db, 1000)
    await stub.set("learner-ai", mode="hang")
    limits = {"MS8_SOURCE_TIMEOUT": "5,learner-ai=1", "MS8_SOURCE_CONCURRENCY": "learner-ai=4",
              "MS8_SOURCE_BREAKER_FAILURES": "3", "MS8_SOURCE_BREAKER_COOLDOWN": "3600"}
    for i in (1, 2):
        await start_worker(processes, stub, f"w{i}", **limits).wait_for_log("worker started")

    run = await run_the_night(db)

    counters = await stub.counters("learner-ai")
    # Per worker: four requests hold the source's slots until they time out, and each of
    # the first two failures lets one more in before the third opens the breaker.
    assert 1 <= counters["received"] <= 2 * (4 + 2)
    assert (run.total, run.partial, run.failed) == (1000, 1000, 0)
    assert run.source_failures == {"learner-ai": 1000}
    rows = await snapshot_rows(db)
    assert len(rows) == 1000
    reasons = Counter(m["reason"] for r in rows for m in r["missing"])
    assert reasons["circuit open"] >= 1000 - counters["received"]
