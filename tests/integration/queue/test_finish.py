"""Ending jobs: complete, fail with retries and backoff, dead letters, cancel, resume, delete."""

from __future__ import annotations

import pytest

from shared import queue
from shared.db import Database
from shared.queue import Failure, InvalidState, JobSpec, NotFound
from tests.support import wait_until


async def start(db: Database, name: str, **options) -> queue.Job:
    await queue.send(db, name, **options)
    [job] = await queue.fetch(db, {name: 1}, "w1")
    return job


async def test_complete_many_moves_jobs_to_history_with_their_output(db: Database) -> None:
    await queue.send_many(db, [JobSpec.of("c", {"i": i}) for i in range(3)])
    jobs = await queue.fetch(db, {"c": 3}, "w1")
    done = await queue.complete_many(
        db, [(jobs[0].id, {"rows": 10}), (jobs[1].id, None), (jobs[2].id, [1])], worker_id="w1")
    assert sorted(done) == sorted(j.id for j in jobs)
    first = await queue.get_job(db, jobs[0].id)
    assert (first.state, first.output, first.progress) == ("completed", {"rows": 10}, 100)
    assert first.completed_at is not None and first.worker_id == "w1"
    assert await db.pool.fetchval(f'SELECT count(*) FROM "{db.schema}".jobs') == 0


async def test_only_the_holding_worker_completes_a_job(db: Database) -> None:
    job = await start(db, "c")
    assert await queue.complete_many(db, [(job.id, None)], worker_id="w2") == []
    with pytest.raises(InvalidState, match="held by w1"):
        await queue.complete(db, job.id, worker_id="w2")
    await queue.complete(db, job.id, worker_id="w1")
    with pytest.raises(InvalidState, match="completed"):
        await queue.complete(db, job.id)
    with pytest.raises(NotFound):
        await queue.complete(db, 999_999)


async def test_failures_retry_with_growing_backoff_then_fail(db: Database) -> None:
    await queue.send(db, "f", retry_limit=2, retry_delay=10)
    delays = []
    for attempt in (1, 2, 3):
        [job] = await queue.fetch(db, {"f": 1}, "w1")
        assert job.attempt == attempt
        result = await queue.fail(db, job.id, f"boom {attempt}", "Traceback...", worker_id="w1")
        now = await db.pool.fetchval("SELECT now()")
        if attempt < 3:
            assert result.state == "retry"
            delays.append((result.start_after - now).total_seconds())
            # Make it due now rather than waiting for the backoff.
            await db.pool.execute(
                f'UPDATE "{db.schema}".jobs SET start_after = now() WHERE id = $1', job.id)
        else:
            assert result.state == "failed"
    # The delay is measured from a moment slightly after the failure: allow for that.
    assert 8.5 <= delays[0] <= 11 and 17.5 <= delays[1] <= 22
    failed = await queue.get_job(db, job.id)
    assert (failed.state, failed.attempt) == ("failed", 3)
    assert (failed.error_message, failed.error_traceback) == ("boom 3", "Traceback...")


async def test_backoff_delay_doubles_per_attempt_is_capped_and_jittered(db: Database) -> None:
    async def delay(attempt: int, base: float, backoff: bool, cap: float) -> float:
        return await db.pool.fetchval(
            f'SELECT "{db.schema}".retry_delay($1, $2, $3, $4)', attempt, base, backoff, cap)

    for attempt, expected in [(1, 60), (2, 120), (3, 240), (4, 480), (5, 960)]:
        value = await delay(attempt, 60, True, 3600)
        assert expected * 0.9 <= value <= expected * 1.1
    assert 3600 * 0.9 <= await delay(12, 60, True, 3600) <= 3600 * 1.1
    assert 54 <= await delay(5, 60, False, 3600) <= 66
    assert 0 < await delay(1000, 1e6, True, 604800) <= 604800 * 1.1
    samples = {round(await delay(1, 60, True, 3600), 6) for _ in range(20)}
    assert len(samples) > 1


async def test_a_failure_without_retry_fails_at_once(db: Database) -> None:
    job = await start(db, "f")
    result = await queue.fail(db, job.id, "bad input", retry=False)
    assert result.state == "failed"


async def test_failed_jobs_go_to_the_dead_letter_queue_and_redrive_sends_them_back(
    db: Database,
) -> None:
    await queue.create_queue(db, "work", retry_limit=0, dead_letter="work-dead")
    job = await start(db, "work", data={"user": 3})
    result = await queue.fail(db, job.id, "exploded", "tb")
    assert result.state == "failed" and result.dead_letter_id is not None
    dead = await queue.get_job(db, result.dead_letter_id)
    assert (dead.queue, dead.state, dead.data) == ("work-dead", "created", {"user": 3})
    assert (dead.origin_id, dead.origin_queue, dead.error_message) == (job.id, "work", "exploded")
    assert await queue.redrive(db, "work-dead") == [dead.id]
    back = await queue.get_job(db, dead.id)
    assert (back.queue, back.state, back.attempt) == ("work", "created", 0)
    assert await queue.redrive(db, "work-dead") == []


async def test_fail_many_handles_a_mix_in_one_statement(db: Database) -> None:
    await queue.send_many(db, [JobSpec.of("m", retry_limit=r) for r in (0, 1, 1)])
    jobs = await queue.fetch(db, {"m": 3}, "w")
    results = await queue.fail_many(db, [
        Failure(jobs[0].id, "a"), Failure(jobs[1].id, "b"), Failure(jobs[2].id, "c", retry=False),
    ])
    assert {r.id: r.state for r in results} == {
        jobs[0].id: "failed", jobs[1].id: "retry", jobs[2].id: "failed"}


async def test_cancel_waiting_and_active_jobs_and_tell_the_workers(
    db: Database, notifications,
) -> None:
    waiting = await queue.send(db, "x")
    active = await start(db, "y")
    assert sorted(await queue.cancel(db, [waiting.id, active.id])) == sorted(
        [waiting.id, active.id])
    assert (await queue.get_job(db, waiting.id)).state == "cancelled"
    assert await queue.cancel(db, [waiting.id]) == []
    cancels = await wait_until(lambda: notifications.on("cancel"))
    assert cancels == [{"ids": [active.id]}]


async def test_cancel_waiting_cancels_a_queue_s_waiting_jobs_and_leaves_active_ones(
    db: Database,
) -> None:
    await queue.send_many(db, [JobSpec.of("bulk", retry_delay=3600.0) for _ in range(3)])
    [active, retrying] = await queue.fetch(db, {"bulk": 2}, "w1")
    await queue.fail(db, retrying.id, "try again later")
    waiting = await queue.send_many(db, [JobSpec.of("bulk") for _ in range(7)])
    delayed = await queue.send(db, "bulk", delay=3600)
    other = await queue.send(db, "other")
    assert await queue.cancel_waiting(db, "bulk", chunk=3) == 10  # 3 + 3 + 3 + 1
    for job_id in [retrying.id, delayed.id, *(s.id for s in waiting)]:
        assert (await queue.get_job(db, job_id)).state == "cancelled"
    assert (await queue.get_job(db, active.id)).state == "active"
    assert (await queue.get_job(db, other.id)).state == "created"
    counts = await queue.count_jobs(db)
    assert counts["bulk"] == {"active": 1, "cancelled": 10}
    assert await queue.cancel_waiting(db, "bulk") == 0
    await queue.complete(db, active.id)  # the active job went on, untouched


async def test_cancel_waiting_keeps_batch_totals_and_finishes_an_emptied_batch(
    db: Database,
) -> None:
    batch_id, sent = await queue.send_batch(
        db, [JobSpec.of("kids") for _ in range(4)], on_complete_queue="kids-done")
    [running] = await queue.fetch(db, {"kids": 1}, "w1")
    assert await queue.cancel_waiting(db, "kids") == 3
    batch = await queue.get_batch(db, batch_id)
    assert batch.finished_at is None
    assert (batch.totals.cancelled, batch.totals.active, batch.totals.waiting) == (3, 1, 0)
    await queue.complete(db, running.id)
    batch = await queue.get_batch(db, batch_id)
    assert batch.finished_at is not None and batch.completion_job_id is not None
    assert (batch.totals.completed, batch.totals.cancelled) == (1, 3)
    # A batch with no child active is finished by the cancel itself.
    other_id, _ = await queue.send_batch(db, [JobSpec.of("kids2") for _ in range(2)])
    assert await queue.cancel_waiting(db, "kids2") == 2
    assert (await queue.get_batch(db, other_id)).finished_at is not None


async def test_cancel_waiting_refuses_an_unknown_or_malformed_queue(db: Database) -> None:
    with pytest.raises(NotFound):
        await queue.cancel_waiting(db, "nosuch")
    with pytest.raises(queue.InvalidInput) as error:
        await queue.cancel_waiting(db, "Bad!")
    assert error.value.field == "queue"


async def test_resume_brings_failed_and_cancelled_jobs_back(db: Database) -> None:
    job = await start(db, "r", retry_limit=0)
    await queue.fail(db, job.id, "no")
    cancelled = await queue.send(db, "r")
    await queue.cancel(db, [cancelled.id])
    assert sorted(await queue.resume(db, [job.id, cancelled.id])) == sorted(
        [job.id, cancelled.id])
    again = await queue.get_job(db, job.id)
    assert (again.state, again.attempt, again.error_message) == ("created", 0, "no")
    assert await queue.resume(db, [job.id]) == []  # already waiting


async def test_resume_refuses_when_the_singleton_key_is_taken_and_moves_nothing(
    db: Database,
) -> None:
    first = await queue.send(db, "s", singleton_key="k")
    await queue.cancel(db, [first.id])
    await queue.send(db, "s", singleton_key="k")
    with pytest.raises(InvalidState, match="singleton"):
        await queue.resume(db, [first.id])
    assert (await queue.get_job(db, first.id)).state == "cancelled"


async def test_delete_removes_waiting_and_finished_jobs_but_not_active_ones(db: Database) -> None:
    waiting = await queue.send(db, "d")
    active = await start(db, "e")
    finished = await queue.send(db, "d")
    await queue.cancel(db, [finished.id])
    deleted = await queue.delete(db, [waiting.id, active.id, finished.id])
    assert sorted(deleted) == sorted([waiting.id, finished.id])
    assert (await queue.get_job(db, active.id)).state == "active"


async def test_counts_follow_jobs_through_history(db: Database) -> None:
    await queue.send_many(db, [JobSpec.of("n") for _ in range(4)])
    jobs = await queue.fetch(db, {"n": 3}, "w")
    await queue.complete_many(db, [(jobs[0].id, None), (jobs[1].id, None)])
    await queue.fail(db, jobs[2].id, "x", retry=False)
    assert (await queue.count_jobs(db))["n"] == {"created": 1, "completed": 2, "failed": 1}
    await queue.delete(db, [jobs[0].id])
    assert (await queue.count_jobs(db))["n"] == {"created": 1, "completed": 1, "failed": 1}
    await queue.resume(db, [jobs[2].id])
    assert (await queue.count_jobs(db))["n"] == {"created": 2, "completed": 1}
