"""The rollups under concurrent workers: four in-process workers (real completers, real
retries) end thousands of jobs at once while a fifth hand cancels others; the rollups
must then say exactly what history says, to the job. And the leader's samples."""

from __future__ import annotations

from shared import queue
from shared.db import Database
from tests.integration.worker.conftest import StartWorker
from tests.support import wait_until
from tests.timelines import assert_rollups_match_history, rolled_up

QUEUES = {"MS8_WORKER_QUEUES": "noop=50,fail=20", "MS8_COMPLETE_BATCH": "50",
          "MS8_SAMPLE_SECONDS": "0.1"}


async def test_rollups_stay_exact_under_concurrent_workers(
    db: Database, start_worker: StartWorker,
) -> None:
    await queue.create_queue(db, "fail", retry_limit=1, retry_delay_seconds=0,
                             retry_backoff=False)
    await queue.send_many(db, [queue.JobSpec.of("noop") for _ in range(3000)])
    # Half fail once and then succeed, half fail both attempts.
    await queue.send_many(db, [queue.JobSpec.of("fail", {"attempts": 1 if i % 2 else 5})
                               for i in range(400)])
    held = [s.id for s in await queue.send_many(
        db, [queue.JobSpec.of("held") for _ in range(200)])]
    for _ in range(4):
        await start_worker(**QUEUES)
    for first in range(0, len(held), 20):  # cancels while the workers complete
        await queue.cancel(db, held[first:first + 20])

    async def all_ended() -> bool:
        left = await db.pool.fetchval(f'SELECT count(*) FROM "{db.schema}".jobs')
        return left == 0

    await wait_until(all_ended, timeout=120, interval=0.1, message="every job ended")
    assert await assert_rollups_match_history(db) == 3600
    totals: dict[tuple[str, str], int] = {}
    for (name, _minute, state), row in (await rolled_up(db)).items():
        totals[name, state] = totals.get((name, state), 0) + row["n"]
    assert totals == {("noop", "completed"): 3000, ("fail", "completed"): 200,
                      ("fail", "failed"): 200, ("held", "cancelled"): 200}

    async def sampled() -> list[queue.FleetSample]:
        found = await queue.fleet_samples(db, queue.Window.last(1))
        return [s for s in found if s.workers == 4]

    [fleet, *_] = await wait_until(sampled, message="a sample of the four workers")
    assert fleet.slots == 4 * 70
    depth = {s.queue for s in await queue.queue_samples(db, queue.Window.last(1))}
    assert {"noop", "fail", "held"} <= depth
