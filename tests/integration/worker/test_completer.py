"""The completer and a job fetched again while its previous result is being reported."""

from __future__ import annotations

import asyncio

from shared import queue
from shared.db import Database
from shared.queue import Failure, Job
from worker.completer import Completer


def completer(db: Database, flushed: list[tuple[Job, str]]) -> Completer:
    return Completer(db, "w1", window=0, max_batch=100, db_timeout=10,
                     on_flushed=flushed.extend)


async def test_a_result_sent_when_its_job_went_stale_is_still_reported(db: Database) -> None:
    """The reply to a flush can come after a fetch of the job's next attempt (the pool's
    reset of the connection is one more round trip): forgetting the stale result then
    must not lose what became of it."""
    await queue.send(db, "q", {}, retry_delay=0.0)
    [job] = await queue.fetch(db, {"q": 1}, "w1")
    flushed: list[tuple[Job, str]] = []
    results = completer(db, flushed)
    results.fail(job, Failure(job.id, "boom"))
    flush = asyncio.create_task(results.flush_once())
    await asyncio.sleep(0)  # the flush has sent its statement
    assert results.forget([job.id]) == []  # in flight: not dropped unsent
    assert await flush is True
    assert flushed == [(job, "retry")]
    assert len(results) == 0


async def test_a_stale_result_not_sent_yet_is_dropped_and_said_so(db: Database) -> None:
    await queue.send(db, "q", {})
    [job] = await queue.fetch(db, {"q": 1}, "w1")
    flushed: list[tuple[Job, str]] = []
    results = completer(db, flushed)
    results.complete(job, {"n": 1})
    assert results.forget([job.id]) == [job]
    assert await results.flush_once() is True
    assert flushed == [] and len(results) == 0
    assert (await queue.get_job(db, job.id)).state == "active"
