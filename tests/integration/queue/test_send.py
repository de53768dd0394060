"""Sending jobs: defaults, options, dedupe, transactions, wake-ups and bad input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from shared import queue
from shared.db import Database
from shared.queue import InvalidInput, JobSpec
from tests.support import wait_until


async def count_rows(db: Database, table: str) -> int:
    return await db.pool.fetchval(f'SELECT count(*) FROM "{db.schema}".{table}')


async def test_send_takes_the_queue_policy_and_creates_the_queue(db: Database) -> None:
    sent = await queue.send(db, "emails", {"to": "a@example.com"})
    assert sent.created
    job = await queue.get_job(db, sent.id)
    assert (job.queue, job.state, job.data, job.priority) == (
        "emails", "created", {"to": "a@example.com"}, 0)
    assert (job.retry_limit, job.retry_delay_seconds, job.retry_backoff) == (2, 60.0, True)
    assert job.run_timeout_seconds == 900.0
    assert (await queue.get_queue(db, "emails")).retry_limit == 2


async def test_per_job_options_override_the_queue(db: Database) -> None:
    await queue.create_queue(db, "reports", retry_limit=5, retry_delay_seconds=10)
    at = datetime.now(UTC) + timedelta(hours=1)
    sent = await queue.send(
        db, "reports", [1, 2], priority=7, start_after=at, retry_limit=1, retry_delay=3,
        retry_backoff=False, retry_delay_max=30, run_timeout=12, singleton_key="r-1")
    job = await queue.get_job(db, sent.id)
    assert job.data == [1, 2]
    assert job.priority == 7
    assert abs((job.start_after - at).total_seconds()) < 0.001
    assert (job.retry_limit, job.retry_delay_seconds, job.retry_backoff) == (1, 3.0, False)
    assert (job.retry_delay_max_seconds, job.run_timeout_seconds) == (30.0, 12.0)
    assert job.singleton_key == "r-1"
    other = await queue.get_job(db, (await queue.send(db, "reports")).id)
    assert (other.retry_limit, other.retry_delay_seconds) == (5, 10.0)


async def test_delay_sets_start_after_from_the_database_clock(db: Database) -> None:
    now = await db.pool.fetchval("SELECT now()")
    job = await queue.get_job(db, (await queue.send(db, "later", delay=90)).id)
    assert 89 <= (job.start_after - now).total_seconds() <= 91


async def test_singleton_key_returns_the_waiting_job(db: Database) -> None:
    first = await queue.send(db, "sync", {"n": 1}, singleton_key="user-7")
    second = await queue.send(db, "sync", {"n": 2}, singleton_key="user-7")
    assert second == queue.Sent(first.id, False)
    other_queue = await queue.send(db, "sync2", singleton_key="user-7")
    assert other_queue.created
    # Once the holder has ended, the key is free again.
    [job] = await queue.fetch(db, {"sync": 1}, "w")
    await queue.complete(db, job.id)
    third = await queue.send(db, "sync", {"n": 3}, singleton_key="user-7")
    assert third.created and third.id != first.id


async def test_fifty_concurrent_sends_with_one_singleton_key_make_one_job(db: Database) -> None:
    await queue.create_queue(db, "dedupe")
    results = await asyncio.gather(*(
        queue.send(db, "dedupe", {"i": i}, singleton_key="same") for i in range(50)))
    assert len({r.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert await count_rows(db, "jobs") == 1


async def test_send_in_a_rolled_back_transaction_leaves_nothing_and_wakes_nobody(
    db: Database, notifications,
) -> None:
    async with db.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        sent = await queue.send(db, "ghost", {"x": 1}, conn=conn)
        await tx.rollback()
    with pytest.raises(queue.NotFound):
        await queue.get_job(db, sent.id)
    # Notifications arrive in commit order: once the marker's has come, a wake-up for the
    # rolled-back send would have come before it.
    await queue.send(db, "marker")
    await wait_until(lambda: notifications.on("wakeup"), message="marker wake-up")
    assert [p["queue"] for p in notifications.on("wakeup")] == ["marker"]


async def test_send_in_a_committed_transaction_wakes_at_commit(db: Database, notifications) -> None:
    async with db.pool.acquire() as conn, conn.transaction():
        await queue.send(db, "tx", conn=conn)
        await queue.send(db, "marker", conn=conn)
    await wait_until(lambda: len(notifications.on("wakeup")) == 2, message="two wake-ups")
    assert {p["queue"] for p in notifications.on("wakeup")} == {"tx", "marker"}


async def test_send_many_is_one_statement_and_one_notification_per_queue(
    db: Database, notifications,
) -> None:
    specs = [JobSpec.of("bulk-a" if i % 2 else "bulk-b", {"i": i}) for i in range(2000)]
    results = await queue.send_many(db, specs)
    assert len(results) == 2000 and all(r.created for r in results)
    assert [r.id for r in results] == sorted(r.id for r in results)
    first, last = await queue.get_job(db, results[0].id), await queue.get_job(db, results[-1].id)
    assert (first.data, last.data) == ({"i": 0}, {"i": 1999})
    await queue.send(db, "marker")
    await wait_until(lambda: any(p["queue"] == "marker" for p in notifications.on("wakeup")))
    assert sorted(p["queue"] for p in notifications.on("wakeup")) == ["bulk-a", "bulk-b", "marker"]


async def test_send_many_thirty_thousand_jobs_in_one_call(db: Database) -> None:
    specs = [JobSpec.of("collect-analytics", {"user_role": i}) for i in range(30_000)]
    results = await queue.send_many(db, specs)
    assert len({r.id for r in results}) == 30_000
    assert await count_rows(db, "jobs") == 30_000


async def test_send_many_dedupes_against_waiting_jobs_and_within_the_call(db: Database) -> None:
    held = await queue.send(db, "d", singleton_key="k1")
    results = await queue.send_many(db, [
        JobSpec.of("d", singleton_key="k1"), JobSpec.of("d", singleton_key="k2"),
        JobSpec.of("d", singleton_key="k2"), JobSpec.of("d"),
    ])
    assert results[0] == queue.Sent(held.id, False)
    assert results[1].created and results[2] == queue.Sent(results[1].id, False)
    assert results[3].created
    assert await count_rows(db, "jobs") == 3


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda db: queue.send(db, "Bad Name"), "queue"),
        (lambda db: queue.send(db, ""), "queue"),
        (lambda db: queue.send(db, "x" * 64), "queue"),
        (lambda db: queue.send(db, "ok", {1, 2}), "data"),
        (lambda db: queue.send(db, "ok", {"b": b"bytes"}), "data"),
        (lambda db: queue.send(db, "ok", priority=5000), "priority"),
        (lambda db: queue.send(db, "ok", priority=True), "priority"),
        (lambda db: queue.send(db, "ok", delay=-1), "delay"),
        (lambda db: queue.send(db, "ok", delay=10**9), "delay"),
        (lambda db: queue.send(db, "ok", start_after=datetime(2030, 1, 1)), "start_after"),
        (lambda db: queue.send(db, "ok", retry_limit=-1), "retry_limit"),
        (lambda db: queue.send(db, "ok", run_timeout=0), "run_timeout"),
        (lambda db: queue.send(db, "ok", singleton_key=""), "singleton_key"),
        (lambda db: queue.send(db, "ok", batch_id=0), "batch_id"),
        (lambda db: queue.send_many(db, [{"queue": "ok"}]), "jobs"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_written(db: Database, call, field) -> None:
    with pytest.raises(InvalidInput) as error:
        await call(db)
    assert error.value.field == field
    assert await count_rows(db, "jobs") == 0
    assert await count_rows(db, "queues") == 0


async def test_sending_into_an_unknown_batch_is_refused_and_writes_nothing(db: Database) -> None:
    with pytest.raises(queue.NotFound):
        await queue.send(db, "child", batch_id=12345)
    assert await count_rows(db, "jobs") == 0


async def test_large_sends_by_copy_apply_options_policies_and_batches(db: Database) -> None:
    from shared.queue.send import COPY_MIN_JOBS

    await queue.create_queue(db, "copied", retry_limit=7, run_timeout_seconds=40)
    at = datetime.now(UTC) + timedelta(days=1)
    specs = [
        JobSpec.of("copied", {"i": i}, priority=i % 3, delay=30 if i % 2 else None,
                   retry_limit=1 if i % 5 == 0 else None)
        for i in range(COPY_MIN_JOBS)
    ] + [JobSpec.of("copied", {"last": True}, start_after=at, run_timeout=5)]
    batch_id = await queue.create_batch(db, "copy")
    results = await queue.send_many(db, specs, batch_id=batch_id)
    assert [r.id for r in results] == sorted(r.id for r in results)
    now = await db.pool.fetchval("SELECT now()")
    first, second = await queue.get_job(db, results[0].id), await queue.get_job(db, results[1].id)
    assert (first.retry_limit, first.run_timeout_seconds, first.batch_id) == (1, 40, batch_id)
    assert (second.retry_limit, second.priority) == (7, 1)
    assert 25 <= (second.start_after - now).total_seconds() <= 31
    last = await queue.get_job(db, results[-1].id)
    assert (last.data, last.run_timeout_seconds) == ({"last": True}, 5)
    assert abs((last.start_after - at).total_seconds()) < 0.001
    assert (await queue.get_batch(db, batch_id)).total == COPY_MIN_JOBS + 1


# Every column a send fills, and whether start_after and created_at are the same instant.
_SENT_ROW = """SELECT queue, state, priority, data, retry_limit, retry_delay_seconds, retry_backoff,
       retry_delay_max_seconds, run_timeout_seconds, singleton_key, batch_id, attempt,
       start_after = created_at AS starts_now
FROM "{schema}".jobs WHERE id = ANY($1::bigint[]) ORDER BY id"""


@pytest.mark.parametrize("count", [3, 1200])
async def test_plain_jobs_are_the_rows_send_many_writes_for_their_specs(
        db: Database, count: int) -> None:
    await queue.create_queue(db, "tuned", retry_limit=7, retry_backoff=False,
                             run_timeout_seconds=40)
    # Backslashes in strings, and once whitespace between tokens (text COPY escapes both).
    data = [f'{{"i":{i},"s":"a\\\\b\\"c\\td\\ne"}}' for i in range(count)]
    data[-1] = '{"i": 1,\n\t"j":\r\n2}'
    jobs = queue.PlainJobs(
        ["tuned" if i % 3 else "fresh" for i in range(count)], data,
        [i % 5 - 2 for i in range(count)])
    ids = await queue.send_plain(db, jobs)
    assert ids == sorted(ids) and len(set(ids)) == count
    baseline = [r.id for r in await queue.send_many(db, jobs.specs())]
    query = _SENT_ROW.format(schema=db.schema)
    plain_rows = [dict(r) for r in await db.pool.fetch(query, ids)]
    many_rows = [dict(r) for r in await db.pool.fetch(query, baseline)]
    assert plain_rows == many_rows
    assert plain_rows[1]["queue"] == "tuned" and plain_rows[1]["retry_limit"] == 7
    assert all(row["starts_now"] for row in plain_rows)
    assert orjson.loads(plain_rows[0]["data"]) == {"i": 0, "s": "a\\b\"c\td\ne"}
    assert orjson.loads(plain_rows[-1]["data"]) == {"i": 1, "j": 2}


async def test_plain_jobs_in_a_rolled_back_transaction_leave_nothing(db: Database) -> None:
    jobs = queue.PlainJobs(["gone"] * 600, ["{}"] * 600, [0] * 600)
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await queue.send_plain(db, jobs, conn=tx)
            raise RuntimeError("roll back")
    assert await count_rows(db, "jobs") == 0


async def test_plain_jobs_to_a_queue_another_send_creates_meanwhile_take_its_policy(
        db: Database) -> None:
    """The queue is created by a transaction that commits while the send waits on it: the
    send's first statement does not see it, and reads the policy again."""
    async with db.pool.acquire() as other, other.transaction():
        await other.execute(
            f'INSERT INTO "{db.schema}".queues (name, retry_limit) VALUES ($1, 9)', "race")
        sending = asyncio.create_task(
            queue.send_plain(db, queue.PlainJobs(["race"] * 600, ["{}"] * 600, [0] * 600)))
        await wait_until(lambda: db.pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"), message="the send waiting on the queue")
    ids = await sending
    assert len(ids) == 600
    assert (await queue.get_job(db, ids[0])).retry_limit == 9
