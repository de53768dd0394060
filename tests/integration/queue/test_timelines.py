"""How the numbers moved: the per-minute rollups the history trigger keeps, the samples
of queue depth and fleet load, and their pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared import queue
from shared.db import Database
from shared.queue.rollups import BOUNDS
from shared.queue.window import MAX_HOURS
from tests.support import register_worker
from tests.timelines import assert_rollups_match_history, rolled_up

T = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


async def insert_history(db: Database, queue_name: str, state: str, completed_at: datetime,
                         run_seconds: float | None, wait_seconds: float = 0.0,
                         n: int = 1) -> None:
    """Finished jobs written straight into history (the trigger is what is tested): ended
    at ``completed_at`` after running ``run_seconds`` (None: never started)."""
    started = None if run_seconds is None else completed_at - timedelta(seconds=run_seconds)
    due = (started or completed_at) - timedelta(seconds=wait_seconds)
    s = f'"{db.schema}"'
    await db.pool.execute(
        f"INSERT INTO {s}.history (id, queue, state, start_after, retry_limit,"
        f" retry_delay_seconds, retry_backoff, retry_delay_max_seconds, started_at,"
        f" completed_at)"
        f" SELECT nextval('{s}.jobs_id_seq'), $1, $2::text::{s}.job_state, $3, 0, 0, false,"
        f" 0, $4, $5 FROM generate_series(1, $6)",
        queue_name, state, due, started, completed_at, n)


async def test_the_bounds_are_those_of_the_database(db: Database) -> None:
    assert await db.pool.fetchval(f'SELECT "{db.schema}".rollup_bounds()') == list(BOUNDS)


async def test_every_end_is_counted_in_its_minute_with_its_run_and_wait(db: Database) -> None:
    await insert_history(db, "a", "completed", T + timedelta(seconds=5), 0.04, 2.0, n=3)
    await insert_history(db, "a", "completed", T + timedelta(seconds=59.999), 4.0)
    await insert_history(db, "a", "failed", T + timedelta(minutes=1), 0.3, 90.0)
    await insert_history(db, "b", "cancelled", T + timedelta(minutes=12), None, 7.0)
    await assert_rollups_match_history(db)

    minute = queue.Window.covering(T, T + timedelta(minutes=15))
    got = {(r.at, r.queue, r.state): r for r in await queue.rollups(db, minute)}
    first = got[T, "a", "completed"]
    assert first.count == 4 and first.run.count == 4 and first.run.max_seconds == 4.0
    assert first.run.buckets[2] == 3 and first.run.buckets[8] == 1  # 40 ms, 4 s
    assert first.wait.quantile(0.5) is not None and first.wait.max_seconds == 2.0
    assert got[T + timedelta(minutes=1), "a", "failed"].wait.max_seconds == 90.0
    cancelled = got[T + timedelta(minutes=12), "b", "cancelled"]
    assert cancelled.count == 1 and cancelled.run.count == 0 and cancelled.run.max_seconds is None

    ten = queue.Window.covering(T, T + timedelta(hours=24))  # ten-minute buckets
    coarse = await queue.rollups(db, ten, queue="a")
    assert [(r.at, r.state, r.count) for r in coarse] == [
        (T, "completed", 4), (T, "failed", 1)]
    assert await queue.rollups(db, queue.Window.covering(T - timedelta(hours=1), T)) == []


async def test_the_statements_that_end_jobs_keep_the_rollups(db: Database) -> None:
    sent = await queue.send_many(db, [queue.JobSpec.of("q", {"i": i}, retry_limit=1)
                                      for i in range(6)])
    ids = [s.id for s in sent]
    jobs = await queue.fetch(db, {"q": 4}, "w1")
    await queue.complete_many(db, [(j.id, None) for j in jobs[:2]])
    await queue.fail(db, jobs[2].id, "boom", retry=False)
    await queue.fail(db, jobs[3].id, "again", retry=True)  # retries: not an end
    await queue.cancel(db, ids[4:])  # never started
    before = await assert_rollups_match_history(db)
    assert before == 5
    totals = {(k[0], k[2]): v["n"] for k, v in (await rolled_up(db)).items()}
    assert totals == {("q", "completed"): 2, ("q", "failed"): 1, ("q", "cancelled"): 2}

    # Rollups count arrivals: deleting history takes nothing away, a resumed job that
    # ends again counts again.
    assert await queue.resume(db, [ids[4]]) == [ids[4]]
    assert await queue.delete(db, [jobs[0].id]) == [jobs[0].id]
    [again] = await queue.fetch(db, {"q": 1}, "w1")  # the retried one waits a minute
    assert again.id == ids[4]
    await queue.complete(db, again.id)
    totals = {(k[0], k[2]): v["n"] for k, v in (await rolled_up(db)).items()}
    assert totals == {("q", "completed"): 3, ("q", "failed"): 1, ("q", "cancelled"): 2}


async def test_samples_of_the_queues_and_the_fleet(db: Database) -> None:
    await queue.send_many(db, [queue.JobSpec.of("busy") for _ in range(5)])
    await queue.send(db, "busy", delay=3600)
    await queue.create_queue(db, "idle")
    await queue.fetch(db, {"busy": 2}, "w1")
    await register_worker(db, "w1", {"busy": 4, "idle": 2})
    await register_worker(db, "gone", {"busy": 50}, seen_seconds_ago=3600)
    await db.pool.execute(
        f'UPDATE "{db.schema}".jobs SET start_after = now() - interval \'30 seconds\''
        " WHERE state = 'created' AND start_after <= now()")

    assert await queue.record_samples(db, seen_within=180) == 2
    window = queue.Window.last(1)
    samples = {s.queue: s for s in await queue.queue_samples(db, window)}
    assert (samples["busy"].waiting, samples["busy"].active) == (4, 2)
    assert 30 <= samples["busy"].oldest_waiting_seconds < 300
    assert (samples["idle"].waiting, samples["idle"].active,
            samples["idle"].oldest_waiting_seconds) == (0, 0, 0)
    [fleet] = await queue.fleet_samples(db, window)
    assert (fleet.workers, fleet.slots, fleet.busy) == (1, 6, 2)
    assert [s.queue for s in await queue.queue_samples(db, window, queue="idle")] == ["idle"]

    await queue.record_samples(db, seen_within=180)  # a second sample
    six_hours = queue.Window.last(MAX_HOURS)  # in the same (six-hour) bucket
    assert len(await queue.queue_samples(db, six_hours)) == 2  # the bucket's peak, once


async def test_pruning_keeps_a_day_and_the_queues_retention(db: Database) -> None:
    now = datetime.now(UTC)
    await queue.create_queue(db, "short", retention_seconds=0)
    await queue.create_queue(db, "long")  # a week
    for name in ("short", "long"):
        for age in (timedelta(days=2), timedelta(hours=1)):
            await insert_history(db, name, "completed", now - age, 0.1)
    await db.pool.execute(f'DELETE FROM "{db.schema}".history')  # history's own pruning
    s = f'"{db.schema}"'
    await db.pool.execute(
        f"INSERT INTO {s}.queue_samples (queue, at, waiting, active, oldest_waiting_seconds)"
        f" SELECT q, now() - age, 1, 0, 0 FROM unnest(ARRAY['short', 'long']) q,"
        f" unnest(ARRAY[interval '2 days', interval '1 hour', interval '9 days']) age")
    await db.pool.execute(
        f"INSERT INTO {s}.fleet_samples (at, workers, slots, busy)"
        f" SELECT now() - age, 1, 1, 0"
        f" FROM unnest(ARRAY[interval '2 days', interval '9 days']) age")

    deleted, more = await queue.prune_timelines(db, limit=1)
    assert (deleted, more) == (3, True)  # one of each kind: a full chunk
    while more:
        _n, more = await queue.prune_timelines(db, limit=1000)

    rollups = sorted((k[0], round((now - k[1]).total_seconds() / 3600))
                     for k in await rolled_up(db))
    assert rollups == [("long", 1), ("long", 48), ("short", 1)]  # the last day stays
    left = await db.pool.fetch(f"SELECT queue, now() - at AS age FROM {s}.queue_samples")
    assert sorted((r["queue"], round(r["age"].total_seconds() / 3600)) for r in left) == [
        ("long", 1), ("long", 48), ("short", 1)]
    fleet = await db.pool.fetch(f"SELECT now() - at AS age FROM {s}.fleet_samples")
    assert [round(r["age"].days) for r in fleet] == [2]  # the longest retention: a week
