"""Fetching: order, delays, pauses, fleet limits, and the eight-fetcher race."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared import queue
from shared.db import Database
from shared.queue import InvalidInput, JobSpec


async def test_highest_priority_first_then_oldest_then_id(db: Database) -> None:
    now = datetime.now(UTC)
    low = await queue.send(db, "q", {"n": "low"}, priority=-5)
    old = await queue.send(db, "q", {"n": "old"}, start_after=now - timedelta(minutes=5))
    plain = await queue.send(db, "q", {"n": "plain"})
    high = await queue.send(db, "q", {"n": "high"}, priority=10)
    jobs = await queue.fetch(db, {"q": 10}, "w1")
    assert [j.id for j in jobs] == [high.id, old.id, plain.id, low.id]
    assert all(j.state == "active" and j.attempt == 1 and j.worker_id == "w1" for j in jobs)
    assert all(j.started_at is not None and j.heartbeat_at is not None for j in jobs)


async def test_fetch_respects_limits_per_queue_and_skips_delayed_jobs(db: Database) -> None:
    await queue.send_many(db, [JobSpec.of("a") for _ in range(5)] + [JobSpec.of("b")] * 3)
    await queue.send(db, "a", delay=3600)
    jobs = await queue.fetch(db, {"a": 10, "b": 2, "unknown": 4}, "w")
    assert sorted(j.queue for j in jobs) == ["a"] * 5 + ["b"] * 2
    assert await queue.fetch(db, {"a": 10}, "w") == []
    later = await queue.next_start_after(db, ["a"])
    assert later is not None and later > datetime.now(UTC) + timedelta(minutes=59)


async def test_a_paused_queue_gives_nothing_until_resumed(db: Database, notifications) -> None:
    await queue.send(db, "p")
    await queue.pause_queue(db, "p")
    assert await queue.fetch(db, {"p": 5}, "w") == []
    await queue.resume_queue(db, "p")
    assert len(await queue.fetch(db, {"p": 5}, "w")) == 1
    # Resuming wakes the workers, since no insert would.
    assert any(p["queue"] == "p" for p in notifications.on("wakeup"))


async def test_fleet_limit_caps_active_jobs_across_concurrent_fetchers(db: Database) -> None:
    await queue.create_queue(db, "capped", fleet_limit=5)
    await queue.send_many(db, [JobSpec.of("capped") for _ in range(200)])
    fetched = await asyncio.gather(*(
        queue.fetch(db, {"capped": 3}, f"w{i}") for i in range(10)))
    assert sum(len(jobs) for jobs in fetched) == 5
    done = [job for jobs in fetched for job in jobs][:2]
    await queue.complete_many(db, [(j.id, None) for j in done])
    fetched = await asyncio.gather(*(
        queue.fetch(db, {"capped": 3}, f"w{i}") for i in range(10)))
    assert sum(len(jobs) for jobs in fetched) == 2


async def test_a_fetcher_never_waits_for_jobs_another_fetch_holds(db: Database) -> None:
    """SKIP LOCKED: while one fetch's transaction still holds its rows, another fetch
    takes the rest at once. lock_timeout turns any wait on those rows into an error."""
    sent = await queue.send_many(db, [JobSpec.of("nowait", {"i": i}) for i in range(6)])
    async with db.pool.acquire() as first, first.transaction():
        held = await queue.fetch(db, {"nowait": 3}, "w1", conn=first)
        async with db.pool.acquire() as second:
            await second.execute("SET lock_timeout = '2s'")
            try:
                taken = await queue.fetch(db, {"nowait": 10}, "w2", conn=second)
                again = await queue.fetch(db, {"nowait": 10}, "w3", conn=second)
            finally:
                await second.execute("RESET lock_timeout")
    assert len(held) == 3 and len(taken) == 3 and again == []
    assert {j.id for j in held} | {j.id for j in taken} == {s.id for s in sent}


async def test_eight_concurrent_fetchers_hand_out_each_of_ten_thousand_jobs_once(
    db: Database,
) -> None:
    sent = await queue.send_many(db, [JobSpec.of("race", {"i": i}) for i in range(10_000)])
    seen: list[int] = []

    async def fetcher(name: str) -> None:
        while jobs := await queue.fetch(db, {"race": 50}, name):
            seen.extend(j.id for j in jobs)
            await queue.complete_many(db, [(j.id, None) for j in jobs], worker_id=name)

    await asyncio.gather(*(fetcher(f"w{i}") for i in range(8)))
    assert len(seen) == 10_000
    assert set(seen) == {s.id for s in sent}
    counts = await queue.count_jobs(db)
    assert counts["race"] == {"completed": 10_000}


async def test_heartbeat_reports_only_jobs_still_held(db: Database) -> None:
    await queue.send_many(db, [JobSpec.of("hb") for _ in range(3)])
    jobs = await queue.fetch(db, {"hb": 3}, "w1")
    await queue.cancel(db, [jobs[0].id])
    held = await queue.heartbeat(db, [j.id for j in jobs], "w1")
    assert held == {jobs[1].id, jobs[2].id}
    assert await queue.heartbeat(db, [j.id for j in jobs], "someone-else") == set()


async def test_release_hands_jobs_back_without_counting_the_attempt(db: Database) -> None:
    await queue.send(db, "r")
    [job] = await queue.fetch(db, {"r": 1}, "w1")
    assert await queue.release(db, [job.id], "w1") == [job.id]
    back = await queue.get_job(db, job.id)
    assert (back.state, back.attempt, back.worker_id) == ("created", 0, None)
    [again] = await queue.fetch(db, {"r": 1}, "w2")
    assert (again.id, again.attempt) == (job.id, 1)


async def test_progress_is_recorded_and_published(db: Database, notifications) -> None:
    await queue.send(db, "prog")
    [job] = await queue.fetch(db, {"prog": 1}, "w")
    assert await queue.set_progress(db, job.id, 40, "half-way there", worker_id="w")
    assert not await queue.set_progress(db, job.id, 50, worker_id="other")
    stored = await queue.get_job(db, job.id)
    assert (stored.progress, stored.progress_message) == (40, "half-way there")
    from tests.support import wait_until

    events = await wait_until(
        lambda: [p for p in notifications.on("events") if p["state"] == "progress"])
    assert events[0] == {"state": "progress", "ids": [job.id], "progress": 40,
                         "message": "half-way there"}


async def test_extending_a_deadline_grows_the_run_timeout_and_never_shrinks_it(
    db: Database,
) -> None:
    sent = await queue.send(db, "long", run_timeout=5.0)
    [job] = await queue.fetch(db, {"long": 1}, "w")
    left = await queue.extend_deadline(db, job.id, 120, worker_id="w")
    assert left is not None and 100 < left <= 120
    extended = (await queue.get_job(db, sent.id)).run_timeout_seconds
    assert extended is not None and 120 <= extended < 140
    # A shorter extension leaves the later deadline as it is.
    again = await queue.extend_deadline(db, job.id, 1, worker_id="w")
    assert again is not None and again > 100
    assert (await queue.get_job(db, sent.id)).run_timeout_seconds == extended


async def test_a_deadline_cannot_be_extended_past_the_limit(db: Database) -> None:
    await queue.send(db, "long", run_timeout=5.0)
    [job] = await queue.fetch(db, {"long": 1}, "w")
    assert await queue.extend_deadline(db, job.id, 50, worker_id="w", max_run_seconds=60)
    with pytest.raises(InvalidInput, match="past 60 s from its start") as error:
        await queue.extend_deadline(db, job.id, 90, worker_id="w", max_run_seconds=60)
    assert error.value.field == "seconds"
    stored = (await queue.get_job(db, job.id)).run_timeout_seconds
    assert stored is not None and stored < 60


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), True, "10", 8 * 86400])
async def test_extend_deadline_refuses_bad_seconds(db: Database, seconds) -> None:
    await queue.send(db, "long")
    [job] = await queue.fetch(db, {"long": 1}, "w")
    with pytest.raises(InvalidInput) as error:
        await queue.extend_deadline(db, job.id, seconds, worker_id="w")
    assert error.value.field == "seconds"


async def test_extend_deadline_of_a_job_not_held_says_why(db: Database) -> None:
    waiting = await queue.send(db, "long")
    await queue.create_queue(db, "free", run_timeout_seconds=None)
    untimed = await queue.send(db, "free")
    with pytest.raises(queue.InvalidState, match="it is created"):
        await queue.extend_deadline(db, waiting.id, 10, worker_id="w")
    [job] = await queue.fetch(db, {"long": 1}, "w")
    with pytest.raises(queue.InvalidState, match="held by w"):
        await queue.extend_deadline(db, job.id, 10, worker_id="other")
    with pytest.raises(queue.NotFound):
        await queue.extend_deadline(db, 10**9, 10, worker_id="w")
    await queue.fetch(db, {"free": 1}, "w")
    assert await queue.extend_deadline(db, untimed.id, 10, worker_id="w") is None
    assert (await queue.get_job(db, untimed.id)).run_timeout_seconds is None


@pytest.mark.parametrize(
    ("wanted", "worker", "field"),
    [({"Bad": 1}, "w", "queue"), ({"q": -1}, "w", "limit"), ({"q": 1}, "", "worker_id")],
)
async def test_fetch_refuses_bad_input(db: Database, wanted, worker, field) -> None:
    with pytest.raises(InvalidInput) as error:
        await queue.fetch(db, wanted, worker)
    assert error.value.field == field


async def test_state_changes_are_published_on_the_events_channel(
    db: Database, notifications,
) -> None:
    from tests.support import wait_until

    batch_id, sent = await queue.send_batch(db, [JobSpec.of("ev"), JobSpec.of("ev")])
    jobs = await queue.fetch(db, {"ev": 2}, "w")
    await queue.complete_many(db, [(jobs[0].id, None)])
    await queue.fail(db, jobs[1].id, "x")
    events = await wait_until(lambda: [
        e for e in notifications.on("events") if e["state"] != "progress"
    ] if len(notifications.on("events")) >= 3 else None)
    ids = sorted(s.id for s in sent)
    assert events[0] == {"state": "active", "ids": ids}
    assert events[1] == {"state": "completed", "ids": [jobs[0].id], "batch_ids": [batch_id]}
    assert events[2] == {"state": "retry", "ids": [jobs[1].id]}


@pytest.mark.parametrize(("durable", "commit"), [(True, "on"), (False, "off")])
async def test_a_claim_waits_for_its_flush_unless_told_not_to(
    db: Database, durable: bool, commit: str,
) -> None:
    # The test server runs with synchronous_commit off: this session turns it back on, as
    # production has it, so that only the claim can turn it off.
    sent = await queue.send(db, "q")
    setting = "SELECT current_setting('synchronous_commit')"
    async with db.pool.acquire() as conn:
        await conn.execute("SET synchronous_commit = on")
        try:
            async with conn.transaction():
                [job] = await queue.fetch(db, {"q": 1}, "w", durable=durable, conn=conn)
                assert (job.id, job.worker_id, job.state) == (sent.id, "w", "active")
                assert await conn.fetchval(setting) == commit
            assert await conn.fetchval(setting) == "on"  # for the claim's transaction only
        finally:
            await conn.execute("RESET synchronous_commit")
