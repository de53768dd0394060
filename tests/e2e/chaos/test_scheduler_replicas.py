"""Two scheduler replicas across three firings of the nightly schedule, the one that fired
first SIGKILLed: every fire time is fired exactly once, and the night is fanned out once.

The daily-batch schedule is switched to fire every few seconds (the replicas reload it on
NOTIFY). Three firings fall on the same night, so the fan-out runs three times for it:
the first sends one job per user-role, the others find the night sent and do nothing.
Measured: firings, jobs they sent, claims the replicas logged, fan-outs that sent.
"""

from __future__ import annotations

import signal

import pytest

from analytics import user_roles
from analytics.fanout import DAILY_QUEUE, night_of
from shared import queue
from shared.cron import CronSchedule
from tests.e2e.chaos import audit
from tests.e2e.chaos.lab import Lab
from tests.e2e.chaos.record import record
from tests.e2e.processes import Process
from tests.support import wait_until

pytestmark = [pytest.mark.chaos(ci=False), pytest.mark.slow]

CRON = "*/3 * * * * *"
# No catch-up of the seeded 02:00 fire time: only the firings of this test count.
SCHEDULER_ENV = {"MS8_SCHEDULER_LISTEN_CHECK_SECONDS": "0.5",
                 "MS8_SCHEDULER_GRACE_SECONDS": "2"}


async def test_two_scheduler_replicas_one_killed_fire_each_time_exactly_once(lab: Lab) -> None:
    n = lab.scale.user_roles(1000)
    await user_roles.seed(lab.db, n)
    fleet = await lab.workers(2)
    await queue.update_schedule(lab.db, DAILY_QUEUE, cron=CRON)
    replicas = [lab.scheduler(f"s{i}", **SCHEDULER_ENV) for i in (1, 2)]
    for replica in replicas:
        await replica.wait_for_log("schedule armed", schedule=DAILY_QUEUE, timeout=90)

    await wait_until(lambda: _firings(lab, 1), timeout=30, message="the first firing")
    first = await wait_until(lambda: _fired_by(replicas), timeout=10,
                             message="the replica that fired first")
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    survivor = next(r for r in replicas if r is not first)
    await wait_until(lambda: _firings(lab, 3), timeout=60, message="three firings")
    await queue.disable_schedule(lab.db, DAILY_QUEUE)
    await survivor.wait_for_log("schedule disarmed", schedule=DAILY_QUEUE, timeout=30)
    assert await survivor.stop() == 0

    rows = await lab.db.pool.fetch(
        f'SELECT fire_time, job_id, job_created FROM "{lab.db.schema}".firings'
        " WHERE schedule = $1 ORDER BY fire_time", DAILY_QUEUE)
    times = [r["fire_time"] for r in rows]
    assert len(rows) >= 3
    # None missing, none twice: the cron's fire times from the first to the last.
    assert times == [times[0], *CronSchedule.of(CRON).between(times[0], times[-1])]
    assert all(r["job_created"] for r in rows)
    nights = sorted({night_of(t) for t in times})
    for night in nights:
        await lab.summary(night, timeout=300)
    assert await lab.stop(fleet) == [0, 0]
    fan_outs = await audit.ends(lab.db, DAILY_QUEUE)
    assert sorted(r["id"] for r in fan_outs) == sorted(r["job_id"] for r in rows)
    claims = [c["fire_time"] for r in replicas for c in _claims(r)]
    assert sorted(claims) == [t.isoformat() for t in times]  # each by exactly one replica
    outputs = [await queue.get_job(lab.db, r["id"]) for r in fan_outs]
    sent = [j.output["status"] for j in outputs]
    assert sent.count("sent") == len(nights)  # one fan-out per night sent its jobs

    results = [await audit.night(lab.db, night) for night in nights]
    for result in results:
        assert result.lost == 0 and result.duplicates == 0 and result.sent == n
    record("scheduler-replicas", results[0] if len(results) == 1 else None, user_roles=n,
           replicas=2, killed=1, firings=len(rows), jobs_sent_by_firings=len(fan_outs),
           claims_logged=len(claims), duplicate_firings=len(times) - len(set(times)),
           fan_outs_that_sent=sent.count("sent"), nights=len(nights))


async def _firings(lab: Lab, at_least: int) -> bool:
    return await lab.db.pool.fetchval(
        f'SELECT count(*) FROM "{lab.db.schema}".firings WHERE schedule = $1',
        DAILY_QUEUE) >= at_least


def _claims(replica: Process) -> list[dict[str, object]]:
    """The firings this replica claimed: on time, or caught up at its start."""
    return [*replica.find("schedule fired", schedule=DAILY_QUEUE),
            *replica.find("missed firing caught up", schedule=DAILY_QUEUE)]


def _fired_by(replicas: list[Process]) -> Process | None:
    """The replica that claimed the earliest fire time so far."""
    claimed = [(str(c["fire_time"]), n) for n, r in enumerate(replicas) for c in _claims(r)]
    return replicas[min(claimed)[1]] if claimed else None
