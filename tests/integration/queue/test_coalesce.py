"""Group commit of single sends: concurrent sends share statements, each gets its own job."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shared import queue
from shared.db import Database
from shared.queue import JobSpec, SendCoalescer


async def test_concurrent_sends_share_groups_and_each_gets_its_own_job(
    db: Database, notifications,
) -> None:
    sender = SendCoalescer(db)
    results = await asyncio.gather(*(
        sender.send(JobSpec.of("grouped", {"i": i})) for i in range(200)))
    await sender.close()
    assert len({r.id for r in results}) == 200 and all(r.created for r in results)
    assert sender.groups_sent < 200
    for i in (0, 123, 199):
        assert (await queue.get_job(db, results[i].id)).data == {"i": i}


async def test_a_lone_send_goes_out_by_itself(db: Database) -> None:
    sender = SendCoalescer(db)
    sent = await sender.send(JobSpec.of("alone", priority=3))
    assert sent.created and (await queue.get_job(db, sent.id)).priority == 3
    assert sender.groups_sent == 1


async def test_a_singleton_key_shared_within_a_group_makes_one_job(db: Database) -> None:
    held = await queue.send(db, "keys", singleton_key="held")
    sender = SendCoalescer(db)
    results = await asyncio.gather(
        sender.send(JobSpec.of("keys", singleton_key="k")),
        sender.send(JobSpec.of("keys", singleton_key="k")),
        sender.send(JobSpec.of("keys", singleton_key="held")),
        sender.send(JobSpec.of("keys")),
    )
    assert results[0].created and results[1] == queue.Sent(results[0].id, False)
    assert results[2] == queue.Sent(held.id, False)
    assert results[3].created


async def test_a_failed_group_fails_every_caller_and_sends_nothing(db: Database) -> None:
    # The database refuses one job of a group sent together, none of it sent before: the
    # group is one transaction, so the four it would take fail with it and none stays.
    await db.pool.execute(f"ALTER TABLE {db.schema}.jobs ADD CONSTRAINT no_poison "
                          "CHECK (NOT data ? 'poison') NOT VALID")
    sender = SendCoalescer(db)
    results = await asyncio.gather(
        *(sender.send(JobSpec.of("fails", {"i": i})) for i in range(4)),
        sender.send(JobSpec.of("fails", {"poison": True})),
        return_exceptions=True)
    await sender.close()
    assert all(isinstance(r, asyncpg.CheckViolationError) for r in results), results
    assert sender.groups_sent == 0
    assert await db.pool.fetchval(
        f"SELECT count(*) FROM {db.schema}.jobs WHERE queue = 'fails'") == 0
    assert await queue.send(db, "fails", {"i": 9})  # the table itself takes jobs


async def test_a_cancelled_caller_does_not_disturb_the_others(db: Database) -> None:
    sender = SendCoalescer(db, max_flushes=1)
    first = asyncio.create_task(sender.send(JobSpec.of("c", {"n": 1})))
    second = asyncio.create_task(sender.send(JobSpec.of("c", {"n": 2})))
    await asyncio.sleep(0)
    second.cancel()
    assert (await first).created
    with pytest.raises(asyncio.CancelledError):
        await second
    await sender.close()


async def test_a_group_with_a_new_queue_sends_every_job(db: Database) -> None:
    # One queue exists, the other does not yet: the group's one statement sends the jobs
    # of the first, the rest go through send_many, which creates the queue.
    await queue.send(db, "old")
    sender = SendCoalescer(db)
    results = await asyncio.gather(*(
        sender.send(JobSpec.of(name, {"i": i})) for i in range(6) for name in ("old", "new")))
    await sender.close()
    assert all(r.created for r in results) and len({r.id for r in results}) == 12
    assert (await queue.get_job(db, results[1].id)).queue == "new"
    assert (await queue.get_queue(db, "new")).name == "new"


async def test_a_failure_after_part_of_a_group_was_sent_fails_only_the_rest(
    db: Database,
) -> None:
    # The jobs of an existing queue are sent by the group's first statement; the job of a
    # new queue that the database then refuses fails alone.
    await queue.send(db, "kept")
    await db.pool.execute(f"ALTER TABLE {db.schema}.jobs ADD CONSTRAINT no_poison "
                          "CHECK (NOT data ? 'poison') NOT VALID")
    sender = SendCoalescer(db)
    results = await asyncio.gather(
        *(sender.send(JobSpec.of("kept", {"i": i})) for i in range(3)),
        sender.send(JobSpec.of("refused", {"poison": True})),
        return_exceptions=True)
    await sender.close()
    assert isinstance(results[3], asyncpg.CheckViolationError), results
    assert all(isinstance(r, queue.Sent) and r.created for r in results[:3]), results
    assert await db.pool.fetchval(
        f"SELECT count(*) FROM {db.schema}.jobs WHERE queue = 'refused'") == 0
