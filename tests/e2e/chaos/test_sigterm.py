"""SIGTERM to every worker mid-batch, then a new fleet: the jobs they held are handed back
without spending an attempt, and the night ends as if nothing had happened.

To be sure that jobs are still running when the grace period ends, the stub's sources
are made slow (5 s) just before the signal, with a one-second grace: the handlers are
cancelled and their jobs handed back. Measured: jobs handed back, how long the workers
took to exit, and from the new fleet's start to the first job ending.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from analytics import user_roles
from analytics.fanout import COLLECT_QUEUE
from tests.e2e.chaos import audit
from tests.e2e.chaos.lab import Lab
from tests.e2e.chaos.record import record
from tests.support import wait_until

pytestmark = [pytest.mark.chaos(ci=False), pytest.mark.slow]


async def test_every_worker_sigtermed_mid_batch_hands_its_jobs_back_unspent(lab: Lab) -> None:
    n = lab.scale.user_roles(1000)
    await user_roles.seed(lab.db, n)
    await lab.sources(latency_ms=100)
    first = await lab.workers(2, MS8_WORKER_GRACE_SECONDS="1")
    night = await lab.fire()
    await lab.until_ended(night, 0.3, timeout=300)
    await lab.sources(latency_ms=5000)
    await asyncio.sleep(0.5)  # the requests in flight now are slow ones
    held = await _active_ids(lab)
    signalled = time.monotonic()
    for proc in first:
        proc.send_signal(signal.SIGTERM)
    assert [await proc.wait_exit(timeout=60) for proc in first] == [0, 0]
    exit_seconds = time.monotonic() - signalled
    waiting = await lab.db.pool.fetch(
        f'SELECT id, attempt, state::text AS state, worker_id FROM "{lab.db.schema}".jobs'
        " WHERE queue = $1 AND id = any($2::bigint[])", COLLECT_QUEUE, sorted(held))
    handed_back = {r["id"] for r in waiting}
    assert handed_back  # the slow jobs could not finish within the grace
    assert {(r["state"], r["attempt"], r["worker_id"]) for r in waiting} == {
        ("created", 0, None)}  # waiting again, the attempt given back
    said = sum(e["count"] for proc in first for e in proc.find("jobs handed back"))
    assert said == len(handed_back)

    await lab.sources(latency_ms=20)
    restarted = time.monotonic()
    second = await lab.workers(2)
    before = (await lab.ended(night))[0]
    await wait_until(lambda: _more_ended(lab, night, before), timeout=60, interval=0.05,
                     message="a job ending on the new fleet")
    resumed_seconds = time.monotonic() - restarted
    summary = await lab.summary(night, timeout=300)
    assert await lab.stop(second) == [0, 0]

    result = await audit.night(lab.db, night)
    assert (result.sent, result.completed, result.failed, result.lost, result.duplicates) == (
        n, n, 0, 0, 0)
    ended = {r["id"]: r for r in await audit.ends(lab.db, COLLECT_QUEUE)}
    assert {(ended[i]["attempt"], ended[i]["crash_count"]) for i in handed_back} == {(1, 0)}
    assert result.re_runs == 0  # a handed-back job is neither a retry nor a crash
    record("sigterm-all-workers", result, user_roles=n, handed_back=len(handed_back),
           attempts_spent_on_handed_back=0, exit_seconds=exit_seconds,
           resumed_seconds_after_start=resumed_seconds,
           batch_seconds=summary.duration_seconds)


async def _active_ids(lab: Lab) -> set[int]:
    rows = await lab.db.pool.fetch(
        f'SELECT id FROM "{lab.db.schema}".jobs WHERE queue = $1 AND state = \'active\'',
        COLLECT_QUEUE)
    return {r["id"] for r in rows}


async def _more_ended(lab: Lab, night: object, before: int) -> bool:
    return (await lab.ended(night))[0] > before  # type: ignore[arg-type]
