"""A nightly batch while a worker is SIGKILLed every few seconds and started again.

Two workers collect; every ``MS8_CHAOS_KILL_SECONDS`` the older one is killed (at a moment
it holds jobs) and a new one started in its place, until the night's summary is written.
The killed worker's jobs are taken back through its session lock and run elsewhere,
without spending an attempt. Measured: how long after each SIGKILL the dead worker held
no job any more (take-back).
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import time

import pytest

from analytics import user_roles
from analytics.fanout import COLLECT_QUEUE
from tests.e2e.chaos import audit
from tests.e2e.chaos.lab import Lab
from tests.e2e.chaos.record import record
from tests.e2e.processes import Process
from tests.support import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


async def test_a_nightly_batch_survives_a_worker_sigkilled_every_few_seconds(lab: Lab) -> None:
    n = lab.scale.user_roles(1000)
    await user_roles.seed(lab.db, n)
    await lab.sources(latency_ms=200)  # ~80 jobs/s for the two workers: a batch of seconds
    fleet = await lab.workers(2)
    started = time.monotonic()
    night = await lab.fire()
    take_backs: list[float] = []
    while await lab.summary_now(night) is None:
        await asyncio.sleep(lab.scale.kill_seconds)
        victim = await _holding_jobs(lab, fleet)  # oldest first
        if victim is None:  # between jobs: the fan-out, the summary
            continue
        assert await victim.stop(signal.SIGKILL) == -signal.SIGKILL
        killed = time.monotonic()
        fleet.remove(victim)
        fleet.append(lab.worker())
        await wait_until(lambda v=victim.name: _none_on(lab, v), timeout=60, interval=0.05,
                         message=f"the jobs of {victim.name} taken back")
        take_backs.append(time.monotonic() - killed)
    summary = await lab.summary(night, timeout=300)
    assert await lab.stop(fleet) == [0] * len(fleet)

    result = await audit.night(lab.db, night)
    assert (result.sent, result.completed, result.partial, result.failed) == (n, n, 0, 0)
    assert result.lost == 0 and result.duplicates == 0
    assert len(take_backs) >= 2, "the batch ended before a second kill"
    assert result.crashes >= 1  # the kills hit running jobs, which ran again ...
    ended = await audit.ends(lab.db, COLLECT_QUEUE)
    assert {r["attempt"] for r in ended} == {1}  # ... without spending an attempt
    record("worker-sigkill", result, user_roles=n, kills=len(take_backs),
           take_back_seconds_max=max(take_backs),
           take_back_seconds_median=statistics.median(take_backs),
           batch_seconds=summary.duration_seconds,
           wall_seconds=time.monotonic() - started)


async def _holding_jobs(lab: Lab, fleet: list[Process]) -> Process | None:
    for proc in fleet:
        if await lab.active_on(proc.name) > 0:
            return proc
    return None


async def _none_on(lab: Lab, worker_id: str) -> bool:
    return await lab.active_on(worker_id) == 0
