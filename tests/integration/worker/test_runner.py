"""The runner with a real database: jobs run, report, retry, time out, get cancelled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared import queue
from shared.db import Database, open_database
from shared.queue import JobSpec, fleet
from tests import conftest as base
from tests.support import wait_until
from worker.context import JobContext
from worker.metrics import WorkerMetrics
from worker.runner import Runner

from .conftest import StartWorker


async def job_state(db: Database, job_id: int) -> str:
    return (await queue.get_job(db, job_id)).state


async def finished(db: Database, job_id: int) -> bool:
    return (await queue.get_job(db, job_id)).finished


def timed(runner: Runner, queue_name: str, outcome: str) -> float:
    """How many runs the job-duration histogram observed with this saved outcome."""
    value = runner.metrics.registry.get_sample_value(
        "ms8_worker_job_run_seconds_count", {"queue": queue_name, "outcome": outcome})
    return value or 0.0


def outcomes(runner: Runner, queue_name: str, outcome: str) -> float:
    value = runner.metrics.registry.get_sample_value(
        "ms8_worker_jobs_finished_total", {"queue": queue_name, "outcome": outcome})
    return value or 0.0


async def counted(runner: Runner, queue_name: str, outcome: str, n: int) -> None:
    """Runs are counted once their result is saved, a moment after the database shows it."""
    await wait_until(lambda: outcomes(runner, queue_name, outcome) >= n, timeout=10,
                     message=f"{n} {outcome} runs of {queue_name} counted")
    assert outcomes(runner, queue_name, outcome) == n


async def test_runs_jobs_and_stores_their_output(db: Database, start_worker: StartWorker) -> None:
    runner = await start_worker(MS8_WORKER_QUEUES="echo=3,noop")
    sent = await queue.send_many(db, [JobSpec.of("echo", {"n": i}) for i in range(20)])
    noop = await queue.send(db, "noop")
    for s in [*sent, noop]:
        await wait_until(lambda s=s: finished(db, s.id), message=f"job {s.id} done")
    for i, s in enumerate(sent):
        job = await queue.get_job(db, s.id)
        assert job.state == "completed"
        assert job.output == {"data": {"n": i}, "attempt": 1, "worker_id": runner.worker_id}
        assert job.worker_id == runner.worker_id and job.progress == 100
    assert (await queue.get_job(db, noop.id)).output is None
    await counted(runner, "echo", "completed", 20)


async def test_an_idle_worker_is_woken_by_the_insert_notification(
    db: Database, start_worker: StartWorker,
) -> None:
    # The safety-net poll is 60 s: only the NOTIFY can start this job within the wait.
    runner = await start_worker(MS8_WORKER_QUEUES="echo")
    await wait_until(lambda: runner.metrics.registry.get_sample_value(
        "ms8_worker_fetches_total") == 1.0, message="the first (catch-up) fetch")
    sent = await queue.send(db, "echo", {"hello": 1})
    await wait_until(lambda: finished(db, sent.id), timeout=10)
    assert (await queue.get_job(db, sent.id)).state == "completed"


async def test_a_delayed_job_starts_when_due_not_before(
    db: Database, start_worker: StartWorker,
) -> None:
    await start_worker(MS8_WORKER_QUEUES="echo")
    sent = await queue.send(db, "echo", delay=1.0)
    job = await queue.get_job(db, sent.id)
    await wait_until(lambda: finished(db, sent.id), timeout=10)
    done = await queue.get_job(db, sent.id)
    assert done.state == "completed"
    assert done.started_at is not None and done.started_at >= job.start_after


async def test_a_job_sent_later_with_an_earlier_start_re_arms_the_timer(
    db: Database, start_worker: StartWorker,
) -> None:
    runner = await start_worker(MS8_WORKER_QUEUES="echo")
    later = await queue.send(db, "echo", delay=3600)
    later_at = (await queue.get_job(db, later.id)).start_after.timestamp()
    await wait_until(lambda: runner.wakeup.timers().get("echo") == pytest.approx(later_at),
                     message="a timer for the hour")
    soon = await queue.send(db, "echo", delay=2)
    soon_at = (await queue.get_job(db, soon.id)).start_after.timestamp()
    # The timer moves to the earlier start (the safety poll is a minute away, so nothing
    # else would run the job within the wait below) ...
    await wait_until(lambda: runner.wakeup.timers().get("echo") == pytest.approx(soon_at)
                     or runner.wakeup.timers().get("echo") is None,
                     message="the timer re-armed for the job sent later")
    await wait_until(lambda: finished(db, soon.id), timeout=10)
    assert (await queue.get_job(db, soon.id)).started_at.timestamp() >= soon_at
    # ... and back to the hour once that job ran.
    await wait_until(lambda: runner.wakeup.timers().get("echo") == pytest.approx(later_at),
                     message="the timer back on the hour")
    assert (await queue.get_job(db, later.id)).state == "created"


async def test_a_failing_job_retries_then_succeeds(db: Database, start_worker: StartWorker) -> None:
    runner = await start_worker(MS8_WORKER_QUEUES="fail")
    sent = await queue.send(db, "fail", {"attempts": 2, "message": "flaky"}, retry_limit=3,
                            retry_delay=0.0)
    await wait_until(lambda: finished(db, sent.id), timeout=30)
    job = await queue.get_job(db, sent.id)
    assert job.state == "completed" and job.attempt == 3
    assert job.output == {"succeeded_on_attempt": 3}
    await counted(runner, "fail", "failed", 2)


async def test_a_failure_with_no_attempt_left_keeps_message_and_traceback(
    db: Database, start_worker: StartWorker,
) -> None:
    await start_worker(MS8_WORKER_QUEUES="fail")
    sent = await queue.send(db, "fail", {"message": "boom"}, retry_limit=0)
    await wait_until(lambda: finished(db, sent.id))
    job = await queue.get_job(db, sent.id)
    assert job.state == "failed" and job.attempt == 1
    assert job.error_message == "HandlerFailure: boom"
    assert job.error_traceback is not None and "raise HandlerFailure(message)" in (
        job.error_traceback)


async def test_a_permanent_error_does_not_use_the_attempts_left(
    db: Database, start_worker: StartWorker,
) -> None:
    await start_worker(MS8_WORKER_QUEUES="fail,sleep")
    sent = await queue.send(db, "fail", {"permanent": True, "message": "bad input"},
                            retry_limit=5, retry_delay=0.0)
    bad_sleep = await queue.send(db, "sleep", {"seconds": "forever"}, retry_limit=5)
    for s in (sent, bad_sleep):
        await wait_until(lambda s=s: finished(db, s.id))
    job = await queue.get_job(db, sent.id)
    assert (job.state, job.attempt, job.error_message) == (
        "failed", 1, "PermanentError: bad input")
    assert "data.seconds must be a number" in (await queue.get_job(db, bad_sleep.id)).error_message


async def test_output_that_json_cannot_carry_fails_the_job(
    db: Database, start_worker: StartWorker,
) -> None:
    async def returns_a_set(ctx: JobContext) -> Any:
        return {1, 2}

    await start_worker({"odd": returns_a_set}, MS8_WORKER_QUEUES="odd")
    sent = await queue.send(db, "odd", retry_limit=3)
    await wait_until(lambda: finished(db, sent.id))
    job = await queue.get_job(db, sent.id)
    assert job.state == "failed" and job.attempt == 1
    assert "cannot be stored" in job.error_message and "JSON" in job.error_message


async def test_the_run_timeout_cancels_the_handler_and_fails_with_timeout(
    db: Database, start_worker: StartWorker,
) -> None:
    cancelled = asyncio.Event()

    async def stuck(ctx: JobContext) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    runner = await start_worker({"stuck": stuck}, MS8_WORKER_QUEUES="stuck",
                                MS8_TIMEOUT_GRACE_SECONDS="3600")
    retried = await queue.send(db, "stuck", run_timeout=0.2, retry_limit=1, retry_delay=3600.0)
    await wait_until(cancelled.is_set, timeout=10, message="handler cancelled")
    await wait_until(lambda: _is(db, retried.id, "retry"), message="retry after a timeout")
    job = await queue.get_job(db, retried.id)
    assert job.error_message == "timeout" and "run timeout of 0.2 s" in job.error_traceback
    last = await queue.send(db, "stuck", run_timeout=0.2, retry_limit=0)
    await wait_until(lambda: finished(db, last.id))
    job = await queue.get_job(db, last.id)
    assert (job.state, job.error_message) == ("failed", "timeout")
    await counted(runner, "stuck", "timeout", 2)


async def _is(db: Database, job_id: int, state: str) -> bool:
    return await job_state(db, job_id) == state


async def test_cancelling_an_active_job_stops_its_handler(
    db: Database, start_worker: StartWorker,
) -> None:
    runner = await start_worker(MS8_WORKER_QUEUES="sleep")
    sent = await queue.send(db, "sleep", {"seconds": 3600})
    await wait_until(lambda: sent.id in runner.executor.running_ids, message="job running")
    await queue.cancel(db, [sent.id])
    await wait_until(lambda: not runner.executor.running_ids, timeout=5,
                     message="handler cancelled by the cancel notification")
    await counted(runner, "sleep", "cancelled", 1)
    assert await job_state(db, sent.id) == "cancelled"
    assert runner.free("sleep") == runner.concurrency["sleep"]


async def test_a_job_taken_away_is_noticed_by_the_heartbeat(
    db: Database, start_worker: StartWorker,
) -> None:
    runner = await start_worker(MS8_WORKER_QUEUES="sleep", MS8_MAINTENANCE="false")
    sent = await queue.send(db, "sleep", {"seconds": 3600}, retry_delay=3600.0)
    await wait_until(lambda: sent.id in runner.executor.running_ids)
    # Someone else's maintenance decides the job is lost (as after a long stall); the
    # queue is paused, so that this worker does not simply fetch it again.
    await queue.pause_queue(db, "sleep")
    reclaimed = await queue.reclaim_lost_jobs(db, stall_seconds=0.001)
    assert [r.id for r in reclaimed] == [sent.id]
    await wait_until(lambda: not runner.executor.running_ids, timeout=5)
    await counted(runner, "sleep", "lost", 1)
    assert await job_state(db, sent.id) == "created"


async def test_heartbeats_keep_a_job_longer_than_the_stall_timeout_alive(
    db: Database, start_worker: StartWorker,
) -> None:
    runner = await start_worker(MS8_WORKER_QUEUES="sleep", MS8_STALL_SECONDS="1",
                                MS8_HEARTBEAT_SECONDS="0.1", MS8_RESCUE_SECONDS="0.1")
    await wait_until(lambda: runner.leadership and runner.leadership.is_leader)
    sent = await queue.send(db, "sleep", {"seconds": 2.5})
    await wait_until(lambda: finished(db, sent.id), timeout=10)
    job = await queue.get_job(db, sent.id)
    assert (job.state, job.attempt) == ("completed", 1)
    assert runner.maintenance.passes["rescuer"] > 3


async def test_progress_is_recorded_while_the_job_runs(
    db: Database, start_worker: StartWorker,
) -> None:
    await start_worker(MS8_WORKER_QUEUES="sleep")
    sent = await queue.send(db, "sleep", {"seconds": 3})
    await wait_until(lambda: _progress(db, sent.id), timeout=10)
    job = await queue.get_job(db, sent.id)
    assert job.state == "active" and 0 < job.progress < 100
    assert job.progress_message is not None and job.progress_message.startswith("slept")


async def _progress(db: Database, job_id: int) -> bool:
    return (await queue.get_job(db, job_id)).progress > 0


async def test_poll_only_mode_finds_jobs_without_listening(
    db: Database, start_worker: StartWorker,
) -> None:
    runner = await start_worker(MS8_WORKER_QUEUES="echo", MS8_POLL_ONLY="true",
                                MS8_POLL_SECONDS="0.2")
    assert runner.listener is None  # nothing LISTENs: only polls can find work
    assert not await db.pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND query ILIKE 'LISTEN%'")

    def fetches() -> float:
        return runner.metrics.registry.get_sample_value("ms8_worker_fetches_total") or 0.0

    # Idle, it polls (a listening worker would stay silent with nothing sent).
    idle = fetches()
    await wait_until(lambda: fetches() >= idle + 3, timeout=10, message="three idle polls")
    sent = await queue.send(db, "echo")
    delayed = await queue.send(db, "echo", delay=0.5)
    for s in (sent, delayed):
        await wait_until(lambda s=s: finished(db, s.id), timeout=10)


async def test_concurrency_per_queue_is_never_exceeded(
    db: Database, start_worker: StartWorker,
) -> None:
    running = 0
    most = 0

    async def tracked(ctx: JobContext) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1

    runner = await start_worker({"tracked": tracked}, MS8_WORKER_QUEUES="tracked=4")
    sent = await queue.send_many(db, [JobSpec.of("tracked") for _ in range(60)])
    await wait_until(lambda: all_finished(db, [s.id for s in sent]), timeout=20)
    assert most == 4
    assert runner.metrics.registry.get_sample_value(
        "ms8_worker_fetch_batch_size_count") >= 15


async def all_finished(db: Database, ids: list[int]) -> bool:
    counts = await queue.count_jobs(db)
    total = sum(n for states in counts.values() for s, n in states.items()
                if s in ("completed", "failed", "cancelled"))
    return total >= len(ids)


async def test_a_paused_queue_is_rechecked_with_backoff_not_in_a_loop(
    db: Database, start_worker: StartWorker,
) -> None:
    await queue.create_queue(db, "echo")
    await queue.pause_queue(db, "echo")
    sent = await queue.send(db, "echo")
    runner = await start_worker(MS8_WORKER_QUEUES="echo")
    # Each empty fetch of a queue with a job due doubles the wait before the next one.
    await wait_until(lambda: runner.wakeup.recheck_delay("echo") >= 0.8, timeout=10)
    fetches = runner.metrics.registry.get_sample_value("ms8_worker_fetches_total")
    assert fetches is not None and fetches <= 6
    await queue.resume_queue(db, "echo")  # notifies
    await wait_until(lambda: finished(db, sent.id), timeout=10)


async def test_metrics_are_served_over_http(db: Database, start_worker: StartWorker) -> None:
    runner = await start_worker(MS8_WORKER_QUEUES="noop")
    await queue.send(db, "noop")
    await wait_until(lambda: timed(runner, "noop", "completed"), message="run time observed")
    await counted(runner, "noop", "completed", 1)
    metrics: WorkerMetrics = runner.metrics
    port = metrics.serve(0, addr="127.0.0.1")
    try:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        metrics.close()
    assert 'ms8_worker_jobs_finished_total{outcome="completed",queue="noop"} 1.0' in text
    assert ('ms8_worker_job_run_seconds_count{outcome="completed",queue="noop"} 1.0'
            in text)
    assert 'ms8_build_info{commit="' in text and 'process="worker"' in text
    assert "process_resident_memory_bytes" in text and "python_info" in text
    assert "ms8_worker_completion_batch_size_count" in text
    assert "ms8_worker_maintenance_leader 1.0" in text


async def test_run_time_is_observed_by_queue_and_outcome_once_the_result_is_saved(
    db: Database, start_worker: StartWorker,
) -> None:
    async def work(ctx: JobContext) -> None:
        if ctx.data.get("fail"):
            raise RuntimeError("boom")
        if ctx.data.get("block"):
            await asyncio.sleep(3600)

    # A slow heartbeat: the cancel NOTIFY, not a heartbeat finding the job gone (which
    # ends the run as lost), is what must stop the blocked handler.
    runner = await start_worker({"work": work}, MS8_WORKER_QUEUES="work=5",
                                MS8_HEARTBEAT_SECONDS="1")
    await queue.send(db, "work", {})
    failing = await queue.send(db, "work", {"fail": True}, retry_limit=1, retry_delay=0.0)
    blocked = await queue.send(db, "work", {"block": True})
    await wait_until(lambda: _is(db, blocked.id, "active"))
    await queue.cancel(db, [blocked.id])
    await wait_until(lambda: finished(db, failing.id))
    expected = {"completed": 1, "retry": 1, "failed": 1, "cancelled": 1}
    await wait_until(lambda: {k: timed(runner, "work", k) for k in expected} == expected,
                     message=f"observations {expected}")
    assert timed(runner, "work", "timeout") == timed(runner, "work", "lost") == 0


async def test_stop_lets_short_jobs_finish_and_hands_long_ones_back(
    db: Database, start_worker: StartWorker,
) -> None:
    runner = await start_worker(MS8_WORKER_QUEUES="sleep=10")
    short = await queue.send_many(db, [JobSpec.of("sleep", {"seconds": 0.3}) for _ in range(3)])
    long = await queue.send_many(db, [JobSpec.of("sleep", {"seconds": 3600}) for _ in range(3)])
    await wait_until(lambda: len(runner.executor.running_ids) == 6)
    assert await runner.stop(grace=1.5) is True
    for s in short:
        assert await job_state(db, s.id) == "completed"
    for s in long:
        job = await queue.get_job(db, s.id)
        assert (job.state, job.attempt, job.worker_id) == ("created", 0, None)
    await counted(runner, "sleep", "released", 3)
    assert await _registered(db) == []


async def _registered(db: Database) -> list[str]:
    return [w.id for w in await fleet.list_workers(db)]


async def test_a_worker_without_handler_for_a_queue_refuses_to_start(db: Database) -> None:
    from worker.handlers import HandlerError

    from .conftest import worker_settings

    with pytest.raises(HandlerError, match="no handler for queue 'missing'"):
        Runner(db, worker_settings(MS8_WORKER_QUEUES="missing"), {})


async def test_retry_of_a_failed_job_is_started_on_time_by_the_worker_s_own_timer(
    db: Database, start_worker: StartWorker,
) -> None:
    await start_worker(MS8_WORKER_QUEUES="fail")
    sent = await queue.send(db, "fail", {"attempts": 1}, retry_limit=1, retry_delay=0.5,
                            retry_backoff=False)
    await wait_until(lambda: finished(db, sent.id), timeout=10)
    job = await queue.get_job(db, sent.id)
    assert (job.state, job.attempt) == ("completed", 2)
    assert job.started_at is not None
    assert job.started_at - job.created_at >= timedelta(seconds=0.4)
    assert datetime.now(UTC) - job.completed_at < timedelta(minutes=1)


async def test_a_job_fetched_again_while_its_old_attempt_runs_here_replaces_it(
    db: Database, start_worker: StartWorker,
) -> None:
    async def first_run_hangs(ctx: JobContext) -> int:
        if ctx.job.crash_count == 0:
            await asyncio.sleep(3600)
        return ctx.job.crash_count

    runner = await start_worker(
        {"twice": first_run_hangs}, MS8_WORKER_QUEUES="twice", MS8_MAINTENANCE="false",
        MS8_HEARTBEAT_SECONDS="30", MS8_STALL_SECONDS="60")
    sent = await queue.send(db, "twice", retry_delay=0.0)
    await wait_until(lambda: sent.id in runner.executor.running_ids)
    # Reclaimed (as after an outage) and, being waiting again, fetched by the same worker
    # before any heartbeat could tell it the first attempt was taken away.
    await queue.reclaim_lost_jobs(db, stall_seconds=0.001)
    await wait_until(lambda: finished(db, sent.id), timeout=10)
    job = await queue.get_job(db, sent.id)
    assert (job.state, job.attempt, job.crash_count, job.output) == ("completed", 1, 1, 1)
    await wait_until(lambda: len(runner.executor) == 0)
    await counted(runner, "twice", "lost", 1)
    await counted(runner, "twice", "completed", 1)
    assert runner.slots.held_ids() == set() and runner.free("twice") == 10


async def test_an_output_the_database_refuses_fails_the_job_not_the_batch(
    db: Database, start_worker: StartWorker,
) -> None:
    async def nul_output(ctx: JobContext) -> Any:
        return "a\x00b" if ctx.data.get("bad") else "fine"

    # A long stall timeout: the refusal is logged with a traceback, which the tests' default
    # renderer can take seconds to draw on a busy machine, and reclaimed jobs would run again.
    runner = await start_worker({"nul": nul_output}, MS8_WORKER_QUEUES="nul",
                                MS8_COMPLETE_WINDOW_MS="200", MS8_STALL_SECONDS="30")
    sent = await queue.send_many(db, [JobSpec.of("nul", {"bad": i == 3}, retry_limit=2)
                                      for i in range(6)])
    for s in sent:
        await wait_until(lambda s=s: finished(db, s.id), timeout=10)
    jobs = [await queue.get_job(db, s.id) for s in sent]
    assert [j.state for j in jobs] == ["completed"] * 3 + ["failed"] + ["completed"] * 2
    assert jobs[3].attempt == 1
    assert jobs[3].error_message.startswith("the database refused the job's output")
    # Counted as what was saved, not as what the handler returned.
    await counted(runner, "nul", "completed", 5)
    await counted(runner, "nul", "failed", 1)


async def test_a_refusal_unrelated_to_the_output_retries_the_report_not_fails_the_job(
    db: Database, start_worker: StartWorker,
) -> None:
    # The first three statements writing history fail as a pooler that lost a prepared
    # statement would make them fail (SQLSTATE 26000): nothing to do with the output.
    async with db.pool.acquire() as conn:
        await conn.execute(f"""
            CREATE SEQUENCE {db.schema}.refusals;
            CREATE FUNCTION {db.schema}.refuse_thrice() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('{db.schema}.refusals') <= 3 THEN
                    RAISE EXCEPTION 'prepared statement "s1" does not exist'
                        USING ERRCODE = '26000';
                END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER refuse_thrice BEFORE INSERT ON {db.schema}.history
                FOR EACH STATEMENT EXECUTE FUNCTION {db.schema}.refuse_thrice();
        """)
    runner = await start_worker(MS8_WORKER_QUEUES="echo", MS8_STALL_SECONDS="30")
    sent = await queue.send(db, "echo", {"n": 1})
    await wait_until(lambda: finished(db, sent.id), timeout=20)
    job = await queue.get_job(db, sent.id)
    assert (job.state, job.attempt, job.error_message) == ("completed", 1, None)
    assert job.output["data"] == {"n": 1}
    await counted(runner, "echo", "completed", 1)
    assert outcomes(runner, "echo", "failed") == 0


@pytest.mark.parametrize(("claim_commit", "commit"),
                         [(None, "on"), ("durable", "on"), ("async", "off")])
async def test_claims_commit_durably_unless_the_worker_is_told_otherwise(
    db: Database, db_url: str, start_worker: StartWorker, claim_commit: str | None,
    commit: str,
) -> None:
    # The test server runs with synchronous_commit off; the worker's connections get it on,
    # as production has it, and a trigger records it inside each claim's transaction.
    async with db.pool.acquire() as conn:
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(f"""
            ALTER DATABASE "{name}" SET synchronous_commit = on;
            CREATE TABLE {db.schema}.claim_commits (setting text NOT NULL);
            CREATE FUNCTION {db.schema}.record_claim_commit() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO {db.schema}.claim_commits
                SELECT current_setting('synchronous_commit')
                FROM new_rows n JOIN old_rows o ON o.id = n.id
                WHERE n.state = 'active' AND o.state <> 'active';
                RETURN NULL;
            END $$;
            CREATE TRIGGER record_claim_commit AFTER UPDATE ON {db.schema}.jobs
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION {db.schema}.record_claim_commit();
        """)
    own = await open_database(base.test_settings(db_url), "test")
    try:
        env = {} if claim_commit is None else {"MS8_CLAIM_COMMIT": claim_commit}
        await start_worker(database=own, MS8_WORKER_QUEUES="echo", **env)
        sent = [await queue.send(db, "echo", {"n": i}) for i in range(2)]
        for s in sent:
            await wait_until(lambda s=s: finished(db, s.id), message=f"job {s.id} done")
        settings = await db.pool.fetch(f"SELECT setting FROM {db.schema}.claim_commits")
        assert [row["setting"] for row in settings] == [commit, commit]
    finally:
        await own.close()
