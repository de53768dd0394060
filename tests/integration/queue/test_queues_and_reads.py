"""Queue policies, listing with keyset pagination, and lookups of what does not exist."""

from __future__ import annotations

import pytest

from shared import queue
from shared.db import Database
from shared.queue import InvalidInput, JobSpec, NotFound
from shared.queue.fleet import served_queues
from tests.support import register_worker


async def test_create_update_and_list_queues(db: Database) -> None:
    created = await queue.create_queue(
        db, "imports", retry_limit=4, run_timeout_seconds=30, dead_letter="imports-dead",
        fleet_limit=3)
    assert (created.retry_limit, created.run_timeout_seconds, created.fleet_limit) == (4, 30, 3)
    updated = await queue.update_queue(db, "imports", retry_limit=1, fleet_limit=None)
    assert (updated.retry_limit, updated.fleet_limit, updated.dead_letter) == (
        1, None, "imports-dead")
    again = await queue.create_queue(db, "imports", retry_backoff=False)
    assert (again.retry_backoff, again.retry_limit) == (False, 1)
    assert [q.name for q in await queue.list_queues(db)] == ["imports", "imports-dead"]


async def test_a_declared_policy_never_overwrites_an_existing_queue(db: Database) -> None:
    declared = await queue.declare_queue(db, "reports", retry_limit=5, run_timeout_seconds=60)
    assert (declared.retry_limit, declared.run_timeout_seconds) == (5, 60)
    await queue.update_queue(db, "reports", retry_limit=1)
    again = await queue.declare_queue(db, "reports", retry_limit=5)
    assert (again.retry_limit, again.run_timeout_seconds) == (1, 60)
    with pytest.raises(InvalidInput):
        await queue.declare_queue(db, "reports", colour="blue")


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"retry_limit": -1}, "retry_limit"),
        ({"retry_delay_seconds": "soon"}, "retry_delay_seconds"),
        ({"dead_letter": "imports"}, "dead_letter"),
        ({"dead_letter": "Not A Queue"}, "dead_letter"),
        ({"fleet_limit": 0}, "fleet_limit"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_bad_queue_settings_are_refused(db: Database, settings, field) -> None:
    with pytest.raises(InvalidInput) as error:
        await queue.create_queue(db, "imports", **settings)
    assert error.value.field == field
    assert await queue.list_queues(db) == []


async def test_unknown_queue_and_job(db: Database) -> None:
    with pytest.raises(NotFound):
        await queue.update_queue(db, "ghost", retry_limit=1)
    with pytest.raises(NotFound):
        await queue.pause_queue(db, "ghost")
    with pytest.raises(NotFound):
        await queue.get_job(db, 123)
    with pytest.raises(InvalidInput):
        await queue.get_job(db, 0)


async def test_list_jobs_pages_newest_first_across_hot_table_and_history(db: Database) -> None:
    sent = await queue.send_many(db, [JobSpec.of("l", {"i": i}) for i in range(25)])
    jobs = await queue.fetch(db, {"l": 10}, "w")
    await queue.complete_many(db, [(j.id, None) for j in jobs])
    pages, before = [], None
    while page := await queue.list_jobs(db, queue="l", before_id=before, limit=10):
        pages.append([j.id for j in page])
        before = page[-1].id
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i for p in pages for i in p] == sorted((s.id for s in sent), reverse=True)
    completed = await queue.list_jobs(db, queue="l", states=["completed"], limit=100)
    assert sorted(j.id for j in completed) == sorted(j.id for j in jobs)
    with pytest.raises(InvalidInput):
        await queue.list_jobs(db, states=["done"])
    with pytest.raises(InvalidInput):
        await queue.list_jobs(db, limit=0)


async def test_served_queues_are_those_of_workers_seen_lately(db: Database) -> None:
    assert await served_queues(db, seen_within=60) == frozenset()
    await register_worker(db, "w1", {"mail": 2, "reports": 1})
    await register_worker(db, "w2", {"mail": 5})
    await register_worker(db, "gone", {"imports": 1}, seen_seconds_ago=600)
    assert await served_queues(db, seen_within=60) == {"mail", "reports"}
    assert await served_queues(db, seen_within=3600) == {"mail", "reports", "imports"}
    with pytest.raises(InvalidInput, match="seen_within"):
        await served_queues(db, seen_within=0)
