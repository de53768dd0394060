"""Maintenance operations of the core (reclaim, prune, orphans) and the worker's tasks."""

from __future__ import annotations

import pytest

from shared import queue
from shared.db import Database
from shared.queue import InvalidInput, JobSpec
from shared.queue.fleet import list_workers
from worker.registry import Registration, reap_workers


async def age(db: Database, job_ids: list[int], column: str, seconds: float) -> None:
    """Move a timestamp of active jobs into the past (as if time had passed)."""
    assert column in ("heartbeat_at", "started_at")
    await db.pool.execute(
        f"UPDATE ms8jobs.jobs SET {column} = {column} - make_interval(secs => $2)"
        " WHERE id = ANY($1::bigint[])", job_ids, seconds)


async def test_stalled_jobs_are_taken_back_as_a_crash_without_spending_an_attempt(
    db: Database,
) -> None:
    await queue.send_many(db, [JobSpec.of("q", retry_limit=0, retry_delay=60.0)
                               for _ in range(3)])
    jobs = await queue.fetch(db, {"q": 3}, "ghost")
    stale, fresh = [j.id for j in jobs[:2]], jobs[2].id
    await age(db, stale, "heartbeat_at", 120)
    reclaimed = await queue.reclaim_lost_jobs(db, stall_seconds=60)
    assert sorted(r.id for r in reclaimed) == stale
    assert {(r.reason, r.worker_id, r.result.state, r.crash_count) for r in reclaimed} == {
        ("stalled", "ghost", "created", 1)}
    job = await queue.get_job(db, stale[0])
    # No retry was left, yet the job waits again, at once, with its attempt given back.
    assert (job.state, job.attempt, job.crash_count, job.worker_id) == ("created", 0, 1, None)
    assert job.error_message.startswith("stalled: no heartbeat from worker ghost")
    assert (await queue.get_job(db, fresh)).state == "active"
    again = await queue.fetch(db, {"q": 3}, "w2")
    assert sorted(j.id for j in again) == stale and {j.attempt for j in again} == {1}
    assert await queue.reclaim_lost_jobs(db, stall_seconds=60) == []


async def test_a_job_past_its_crash_limit_fails_saying_it_crashed_that_many_workers(
    db: Database,
) -> None:
    await queue.create_queue(db, "poison", crash_limit=3, dead_letter="poison-dead")
    sent = await queue.send(db, "poison", retry_limit=5)
    for crash in (1, 2, 3):
        [job] = await queue.fetch(db, {"poison": 1}, f"w{crash}")
        assert (job.attempt, job.crash_count) == (1, crash - 1)
        [reclaimed] = await queue.take_back_jobs(db, [f"w{crash}"])
        assert (reclaimed.reason, reclaimed.crash_count) == ("dead", crash)
    assert (reclaimed.result.state, reclaimed.poisoned) == ("failed", True)
    job = await queue.get_job(db, sent.id)
    assert (job.state, job.attempt, job.crash_count) == ("failed", 1, 3)
    assert job.error_message.startswith("crashed 3 workers, its queue's crash limit")
    assert "worker w3 died while running it" in job.error_message
    dead = await queue.get_job(db, reclaimed.result.dead_letter_id)
    assert (dead.queue, dead.origin_id, dead.crash_count) == ("poison-dead", sent.id, 0)
    # Resumed, it starts afresh: attempts and crashes.
    await queue.resume(db, [sent.id])
    assert (await queue.get_job(db, sent.id)).crash_count == 0


async def test_taking_back_a_dead_workers_jobs_touches_no_one_elses(db: Database) -> None:
    await queue.send_many(db, [JobSpec.of("q", retry_delay=0.0) for _ in range(4)])
    mine = await queue.fetch(db, {"q": 2}, "dead")
    theirs = await queue.fetch(db, {"q": 2}, "alive")
    assert await queue.take_back_jobs(db, []) == []
    taken = await queue.take_back_jobs(db, ["dead"])
    assert sorted(r.id for r in taken) == sorted(j.id for j in mine)
    assert {(r.reason, r.result.state) for r in taken} == {("dead", "created")}
    for job in theirs:
        assert (await queue.get_job(db, job.id)).worker_id == "alive"
    # A completion from the dead worker's last breath is refused: another may run it now.
    assert await queue.complete_many(db, [(mine[0].id, {})], worker_id="dead") == []
    assert await queue.take_back_jobs(db, ["dead"]) == []


async def test_jobs_past_their_run_timeout_fail_with_timeout(db: Database) -> None:
    await queue.create_queue(db, "slow", dead_letter="slow-dead")
    sent = await queue.send(db, "slow", run_timeout=10.0, retry_limit=0)
    untimed = await queue.send(db, "slow", retry_limit=0)
    await queue.fetch(db, {"slow": 2}, "stuck")
    await age(db, [sent.id, untimed.id], "started_at", 30)
    assert await queue.reclaim_lost_jobs(db, stall_seconds=60, timeout_grace_seconds=25) == []
    [reclaimed] = await queue.reclaim_lost_jobs(db, stall_seconds=60, timeout_grace_seconds=5)
    assert (reclaimed.id, reclaimed.reason) == (sent.id, "timeout")
    assert reclaimed.result.state == "failed"
    job = await queue.get_job(db, sent.id)
    assert (job.state, job.error_message) == ("failed", "timeout")
    assert "run timeout of 10 s" in job.error_traceback
    dead = await queue.get_job(db, reclaimed.result.dead_letter_id)
    assert (dead.queue, dead.origin_id) == ("slow-dead", sent.id)


async def test_an_extended_deadline_holds_off_the_reclaim_until_it_passes(
    db: Database,
) -> None:
    sent = await queue.send(db, "slow", run_timeout=10.0, retry_limit=0)
    [job] = await queue.fetch(db, {"slow": 1}, "w")
    left = await queue.extend_deadline(db, job.id, 60, worker_id="w")
    assert left is not None and 10 < left <= 60
    await age(db, [sent.id], "started_at", 30)  # past the queue's 10 s, within the 60 s
    assert await queue.reclaim_lost_jobs(db, stall_seconds=60, timeout_grace_seconds=0) == []
    assert (await queue.get_job(db, sent.id)).state == "active"
    await age(db, [sent.id], "started_at", 40)  # now past the extended deadline too
    [reclaimed] = await queue.reclaim_lost_jobs(db, stall_seconds=60, timeout_grace_seconds=0)
    assert (reclaimed.id, reclaimed.reason, reclaimed.result.state) == (
        sent.id, "timeout", "failed")


async def test_a_job_locked_by_someone_else_is_left_for_the_next_pass(db: Database) -> None:
    sent = await queue.send(db, "q", retry_delay=0.0)
    await queue.fetch(db, {"q": 1}, "ghost")
    await age(db, [sent.id], "heartbeat_at", 120)
    async with db.pool.acquire() as other, other.transaction():
        await other.execute("SELECT 1 FROM ms8jobs.jobs WHERE id = $1 FOR UPDATE", sent.id)
        assert await queue.reclaim_lost_jobs(db, stall_seconds=60) == []
    assert [r.id for r in await queue.reclaim_lost_jobs(db, stall_seconds=60)] == [sent.id]


async def test_a_reclaimed_last_child_finishes_its_batch(db: Database) -> None:
    await queue.create_queue(db, "q", crash_limit=1)
    batch_id, [sent] = await queue.send_batch(
        db, [JobSpec.of("q", retry_limit=0)], on_complete_queue="done")
    await queue.fetch(db, {"q": 1}, "ghost")
    await age(db, [sent.id], "heartbeat_at", 120)
    await queue.reclaim_lost_jobs(db, stall_seconds=60)
    batch = await queue.get_batch(db, batch_id)
    assert batch.finished_at is not None and batch.totals.failed == 1
    assert batch.completion_job_id is not None


async def test_reclaim_refuses_bad_arguments(db: Database) -> None:
    with pytest.raises(InvalidInput, match="stall_seconds"):
        await queue.reclaim_lost_jobs(db, stall_seconds=0)
    with pytest.raises(InvalidInput, match="limit"):
        await queue.reclaim_lost_jobs(db, stall_seconds=1, limit=0)
    with pytest.raises(InvalidInput, match="limit"):
        await queue.prune_history(db, limit=0)
    with pytest.raises(InvalidInput, match="worker_id"):
        await queue.release_orphans(db, "", [])


async def test_prune_deletes_history_past_retention_in_chunks(db: Database) -> None:
    await queue.create_queue(db, "short", retention_seconds=0)
    await queue.create_queue(db, "long", retention_seconds=3600)
    for name in ("short", "long"):
        await queue.send_many(db, [JobSpec.of(name) for _ in range(25)])
        jobs = await queue.fetch(db, {name: 25}, "w")
        await queue.complete_many(db, [(j.id, None) for j in jobs])
    cancelled = await queue.send(db, "short")
    await queue.cancel(db, [cancelled.id])
    assert await queue.prune_history(db, limit=10) == 10
    assert await queue.prune_history(db, limit=10) == 10
    assert await queue.prune_history(db, limit=10) == 6
    assert await queue.prune_history(db, limit=10) == 0
    counts = await queue.count_jobs(db)
    assert counts.get("short", {}) == {} and counts["long"] == {"completed": 25}


async def test_prune_keeps_the_children_of_an_unfinished_batch(db: Database) -> None:
    await queue.create_queue(db, "kids", retention_seconds=0)
    batch_id = await queue.create_batch(db, "open")
    await queue.send_many(db, [JobSpec.of("kids") for _ in range(2)], batch_id=batch_id)
    jobs = await queue.fetch(db, {"kids": 1}, "w")
    await queue.complete_many(db, [(j.id, None) for j in jobs])
    assert await queue.prune_history(db) == 0
    assert (await queue.get_batch(db, batch_id)).totals.completed == 1


async def test_release_orphans_hands_back_only_jobs_the_worker_does_not_know(
    db: Database,
) -> None:
    await queue.send_many(db, [JobSpec.of("q") for _ in range(4)])
    jobs = await queue.fetch(db, {"q": 3}, "w")
    others = await queue.fetch(db, {"q": 1}, "someone-else")
    known = jobs[0].id
    released = await queue.release_orphans(db, "w", [known])
    assert sorted(released) == sorted(j.id for j in jobs[1:])
    for job in jobs[1:]:
        back = await queue.get_job(db, job.id)
        assert (back.state, back.attempt, back.worker_id) == ("created", 0, None)
    assert (await queue.get_job(db, known)).state == "active"
    assert (await queue.get_job(db, others[0].id)).worker_id == "someone-else"


async def test_registry_register_touch_deregister_and_reap(db: Database) -> None:
    first = Registration(db, "w-a", {"noop": 5, "echo": 2}, interval=60, db_timeout=5)
    second = Registration(db, "w-b", {"noop": 1}, interval=60, db_timeout=5)
    await first.register()
    await second.register()
    workers = {w.id: w for w in await list_workers(db)}
    assert workers["w-a"].queues == {"noop": 5, "echo": 2}
    assert workers["w-a"].concurrency == 7 and workers["w-a"].pid > 0
    await db.pool.execute(
        "UPDATE ms8jobs.workers SET last_seen_at = now() - interval '1 hour' WHERE id = 'w-b'")
    assert await reap_workers(db, 600) == ["w-b"]
    await second.register()  # a forgotten worker that comes back is registered again
    assert await first.deregister() is True
    assert [w.id for w in await list_workers(db)] == ["w-b"]
