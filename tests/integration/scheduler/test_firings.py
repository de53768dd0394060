"""Firing schedules in the core: once per fire time, with an injected clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest

from shared import queue
from shared.db import Database
from shared.queue import NotFound, firings
from tests.integration.scheduler.conftest import arm_in_the_past, firing_rows, jobs_of

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def test_a_fire_time_sends_one_job_however_often_it_is_claimed(db: Database) -> None:
    await queue.create_schedule(db, "nightly", "0 2 * * *", queue="night",
                                data={"run": "all"}, options={"priority": 3})
    await arm_in_the_past(db, "nightly", LONG_AGO)
    now = utc(2026, 3, 1, 2, 0, 0, 4000)
    outcomes = await asyncio.gather(*(
        queue.fire_due(db, "nightly", now=now) for _ in range(10)))
    assert sorted(o.status for o in outcomes) == ["already-fired"] * 9 + ["fired"]
    assert {o.fire_time for o in outcomes} == {utc(2026, 3, 1, 2)}
    jobs = await jobs_of(db, "night")
    # The job carries the schedule's data and the fire time it stands for.
    assert [(orjson.loads(j["data"]), j["priority"]) for j in jobs] == [
        ({"run": "all", "fire_time": "2026-03-01T02:00:00+00:00"}, 3)]
    rows = await firing_rows(db, "nightly")
    assert [(r["fire_time"], r["kind"], r["job_id"]) for r in rows] == [
        (utc(2026, 3, 1, 2), "scheduled", jobs[0]["id"])]
    # Later wake-ups the same night find it fired, and the next night fires anew.
    assert (await queue.fire_due(db, "nightly", now=now + timedelta(minutes=5))).status == (
        "already-fired")
    assert (await queue.fire_due(db, "nightly", now=utc(2026, 3, 2, 2, 0, 1))).status == "fired"
    assert len(await jobs_of(db, "night")) == 2


async def test_berlin_fires_at_local_nine_on_both_sides_of_the_spring_change(
    db: Database,
) -> None:
    await queue.create_schedule(db, "berlin", "0 9 * * *", queue="b",
                                timezone="Europe/Berlin")
    await arm_in_the_past(db, "berlin", LONG_AGO)
    before = await queue.fire_due(db, "berlin", now=utc(2025, 3, 29, 8, 0, 2))
    after = await queue.fire_due(db, "berlin", now=utc(2025, 3, 30, 7, 0, 2))
    # An hour after 09:00 CEST is still 09:00 CET's hour: nothing new is due.
    later = await queue.fire_due(db, "berlin", now=utc(2025, 3, 30, 8, 0, 2))
    assert (before.status, before.fire_time) == ("fired", utc(2025, 3, 29, 8))
    assert (after.status, after.fire_time) == ("fired", utc(2025, 3, 30, 7))
    assert (later.status, later.fire_time) == ("already-fired", utc(2025, 3, 30, 7))
    autumn = await queue.fire_due(db, "berlin", now=utc(2025, 10, 26, 8, 0, 2))
    assert (autumn.status, autumn.fire_time) == ("fired", utc(2025, 10, 26, 8))
    assert len(await jobs_of(db, "b")) == 3


async def test_a_repeated_local_hour_fires_a_fixed_time_once(db: Database) -> None:
    await queue.create_schedule(db, "half-two", "30 2 * * *", queue="b",
                                timezone="Europe/Berlin")
    await arm_in_the_past(db, "half-two", LONG_AGO)
    first = await queue.fire_due(db, "half-two", now=utc(2025, 10, 26, 0, 30, 1))
    # The clock passes 02:30 again an hour later (CET): same firing, no second job.
    second = await queue.fire_due(db, "half-two", now=utc(2025, 10, 26, 1, 30, 1))
    assert (first.status, second.status) == ("fired", "already-fired")
    assert first.fire_time == second.fire_time == utc(2025, 10, 26, 0, 30)


async def test_catch_up_within_grace_and_missed_outside(db: Database) -> None:
    await queue.create_schedule(db, "nightly", "0 2 * * *", queue="night")
    await arm_in_the_past(db, "nightly", LONG_AGO)
    caught = await queue.fire_due(db, "nightly", now=utc(2026, 3, 1, 2, 40), kind="catch-up",
                                  grace_seconds=3600)
    assert (caught.status, caught.fire_time) == ("fired", utc(2026, 3, 1, 2))
    assert caught.firing is not None and caught.firing.kind == "catch-up"
    missed = await queue.fire_due(db, "nightly", now=utc(2026, 3, 2, 3, 0, 1), kind="catch-up",
                                  grace_seconds=3600)
    assert (missed.status, missed.fire_time, missed.firing) == (
        "missed", utc(2026, 3, 2, 2), None)
    old_but_fired = await queue.fire_due(db, "nightly", now=utc(2026, 3, 1, 5), grace_seconds=60)
    assert old_but_fired.status == "already-fired"
    assert len(await jobs_of(db, "night")) == 1


async def test_fire_times_before_the_schedule_existed_are_not_due(db: Database) -> None:
    await queue.create_schedule(db, "fresh", "0 2 * * *", queue="q")
    await arm_in_the_past(db, "fresh", utc(2026, 3, 1, 2, 10))  # ten minutes after a firing
    early = await queue.fire_due(db, "fresh", now=utc(2026, 3, 1, 2, 40), kind="catch-up",
                                 grace_seconds=3600)
    assert (early.status, early.firing) == ("not-due", None)
    assert await jobs_of(db, "q") == []
    # The next 02:00 comes after the schedule existed: that one is due.
    next_day = await queue.fire_due(db, "fresh", now=utc(2026, 3, 2, 2, 30),
                                    kind="catch-up", grace_seconds=3600)
    assert (next_day.status, next_day.fire_time) == ("fired", utc(2026, 3, 2, 2))
    assert len(await jobs_of(db, "q")) == 1


async def test_stale_disabled_and_deleted_schedules_send_nothing(db: Database) -> None:
    await queue.create_schedule(db, "s", "* * * * *", queue="q")
    await arm_in_the_past(db, "s", LONG_AGO)
    now = utc(2026, 1, 1, 0, 0, 1)
    changed = await queue.fire_due(db, "s", now=now, cron="*/5 * * * *", timezone="UTC")
    assert changed.status == "changed"
    await queue.disable_schedule(db, "s")
    assert (await queue.fire_due(db, "s", now=now)).status == "disabled"
    await queue.delete_schedule(db, "s")
    assert (await queue.fire_due(db, "s", now=now)).status == "gone"
    assert await jobs_of(db, "q") == []


async def test_a_held_singleton_key_is_recorded_as_the_existing_job(db: Database) -> None:
    await queue.create_schedule(db, "sync", "* * * * *", queue="q",
                                options={"singleton_key": "one-sync"})
    await arm_in_the_past(db, "sync", LONG_AGO)
    first = await queue.fire_due(db, "sync", now=utc(2026, 1, 1, 0, 0, 1))
    second = await queue.fire_due(db, "sync", now=utc(2026, 1, 1, 0, 1, 1))
    assert first.firing is not None and second.firing is not None
    assert (first.firing.job_created, second.firing.job_created) == (True, False)
    assert second.firing.job_id == first.firing.job_id
    assert len(await jobs_of(db, "q")) == 1


async def test_run_now_is_a_manual_firing_even_when_disabled(db: Database) -> None:
    await queue.create_schedule(db, "s", "0 0 1 1 *", queue="q", data=[1], enabled=False)
    firing = await queue.run_now(db, "s")
    assert (firing.kind, firing.job_created) == ("manual", True)
    job = await queue.get_job(db, firing.job_id)
    assert (job.queue, job.data) == ("q", [1])
    with pytest.raises(NotFound):
        await queue.run_now(db, "nope")


async def test_a_failed_send_leaves_no_firing_behind(db: Database) -> None:
    await queue.create_schedule(db, "s", "* * * * *", queue="broken")
    await arm_in_the_past(db, "s", LONG_AGO)
    await db.pool.execute(f"""
        CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'queue is broken'; END $$;
        CREATE TRIGGER refuse BEFORE INSERT ON "{db.schema}".jobs
            FOR EACH ROW WHEN (NEW.queue = 'broken') EXECUTE FUNCTION refuse();""")
    with pytest.raises(asyncpg.RaiseError, match="queue is broken"):
        await queue.fire_due(db, "s", now=utc(2026, 1, 1, 0, 0, 1))
    assert await firing_rows(db, "s") == []
    await db.pool.execute(f'DROP TRIGGER refuse ON "{db.schema}".jobs')
    retried = await queue.fire_due(db, "s", now=utc(2026, 1, 1, 0, 0, 2))
    assert (retried.status, retried.fire_time) == ("fired", utc(2026, 1, 1, 0, 0))


async def test_pruning_keeps_the_latest_firing_of_each_schedule(db: Database) -> None:
    await queue.create_schedule(db, "s", "0 * * * *", queue="q")
    await arm_in_the_past(db, "s", LONG_AGO)
    for hour in range(5):
        await queue.fire_due(db, "s", now=utc(2026, 1, 1, hour, 0, 1))
    assert await firings.prune_firings(db, utc(2027, 1, 1), limit=2) == 2
    assert await queue.prune_firings(db, utc(2027, 1, 1)) == 2
    assert [r["fire_time"] for r in await firing_rows(db, "s")] == [utc(2026, 1, 1, 4)]


async def test_bad_arguments(db: Database) -> None:
    with pytest.raises(queue.InvalidInput, match="kind"):
        await queue.fire_due(db, "daily-batch", kind="manual")
    with pytest.raises(queue.InvalidInput, match="naive"):
        await queue.fire_due(db, "daily-batch", now=datetime(2026, 1, 1))
