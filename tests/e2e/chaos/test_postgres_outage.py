"""A nightly batch across PostgreSQL outages: stopped (fast shutdown) a fifth of the way
in and started again after ``MS8_CHAOS_OUTAGE_SECONDS``; then crashed (immediate
shutdown: no checkpoint, sessions cut, WAL recovery at start) half-way and started.

The workers keep their results while the database is gone and report them when it is
back; a collection that meets the database gone goes back without spending an attempt;
the API answers 503, never 500, in the meantime. Measured per outage: from the
server accepting connections again to the next job ending (recovery), and the API's
answers while it was down.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from analytics import user_roles
from analytics.fanout import COLLECT_QUEUE
from shared import queue
from tests.e2e.chaos import audit
from tests.e2e.chaos.lab import API_SECRET, Lab, tolerant
from tests.e2e.chaos.record import record
from tests.support import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


async def test_a_nightly_batch_survives_postgres_stopped_and_crashed(lab: Lab) -> None:
    n = lab.scale.user_roles(1000)
    await user_roles.seed(lab.db, n)
    # A collection that meets the database gone spends no attempt; should one fail for
    # another reason, it retries quickly here rather than after the default minute.
    await queue.create_queue(lab.db, COLLECT_QUEUE, retry_limit=2, retry_delay_seconds=1,
                             retry_backoff=False)
    await lab.sources(latency_ms=100)
    fleet = await lab.workers(2, MS8_POOL_MIN="2")
    api = await lab.api()
    night = await lab.fire()
    measured: dict[str, object] = {}
    answers: Counter[int] = Counter()
    for share, mode in ((0.2, "fast"), (0.5, "immediate")):
        await lab.until_ended(night, share, timeout=300)
        before = (await lab.ended(night))[0]
        await asyncio.to_thread(lab.cluster.stop, mode)
        deadline = time.monotonic() + lab.scale.outage_seconds
        async with httpx.AsyncClient(base_url=api, timeout=5, headers={
                "Authorization": f"Bearer {API_SECRET}"}) as client:
            while time.monotonic() < deadline:
                answers[(await client.get("/queues")).status_code] += 1
                await asyncio.sleep(0.2)
        await asyncio.to_thread(lab.cluster.start)
        ready = time.monotonic()
        await wait_until(lambda b=before: _more_ended(lab, night, b), timeout=120,
                         interval=0.05, message=f"a job ending after the {mode} outage")
        measured[f"recovery_seconds_{mode}"] = time.monotonic() - ready
    summary = await lab.summary(night, timeout=300)
    assert await lab.stop(fleet) == [0] * len(fleet)

    result = await audit.night(lab.db, night)
    assert (result.sent, result.completed, result.failed) == (n, n, 0)
    assert result.lost == 0 and result.duplicates == 0
    assert result.re_runs == result.crashes  # no attempt spent: every re-run a crash
    assert set(answers) == {503}, answers  # while the database was down: 503, never 500
    for proc in fleet:
        assert len(proc.find("database unreachable")) >= 2  # they noticed both outages
    record("postgres-outage", result, user_roles=n, outage_seconds=lab.scale.outage_seconds,
           api_answers_while_down=dict(answers), batch_seconds=summary.duration_seconds,
           **measured)


async def _more_ended(lab: Lab, night: object, before: int) -> bool:
    ended = await tolerant(lambda: lab.ended(night))  # type: ignore[arg-type]
    return ended is not None and ended[0] > before
