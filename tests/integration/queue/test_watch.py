"""Watching jobs by NOTIFY: an end before the call, during it, never, for no job; progress."""

from __future__ import annotations

import asyncio

import pytest

from shared import queue
from shared.db import Database
from shared.queue import JobWatcher, NotFound, watch
from tests.support import wait_until


async def start(db: Database, name: str = "w") -> queue.Job:
    await queue.send(db, name, {"n": 1})
    [job] = await queue.fetch(db, {name: 1}, "w1")
    return job


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """(id, state) of every read of a job by the watcher, in order."""
    seen: list[tuple[int, str]] = []
    read = watch.get_job

    async def recorded(db: Database, job_id: int) -> queue.Job:
        job = await read(db, job_id)
        seen.append((job.id, job.state))
        return job

    monkeypatch.setattr(watch, "get_job", recorded)
    return seen


async def test_a_job_that_ended_before_the_call_is_returned_at_once(db: Database) -> None:
    job = await start(db)
    await queue.complete(db, job.id, {"rows": 3})
    ended = await queue.wait_for_end(db, job.id, timeout=10)
    assert (ended.id, ended.state, ended.output) == (job.id, "completed", {"rows": 3})


async def test_an_end_during_the_wait_is_heard(
        db: Database, reads: list[tuple[int, str]]) -> None:
    job = await start(db)
    async with JobWatcher(db, recheck_interval=3600) as watcher:
        waiting = asyncio.create_task(watcher.wait(job.id, timeout=10))
        await wait_until(lambda: reads, message="the first read")
        await queue.fail(db, job.id, "boom", retry=False)
        ended = await waiting
    assert (ended.state, ended.error_message) == ("failed", "boom")
    assert reads == [(job.id, "active"), (job.id, "failed")]  # woken by the notification


async def test_an_end_between_the_read_and_the_wait_is_not_missed(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The job ends (and notifies) right after the watcher read it as still active."""
    job = await start(db)
    read = watch.get_job

    async def read_then_cancel(db_: Database, job_id: int) -> queue.Job:
        current = await read(db_, job_id)
        if not current.finished:
            await queue.cancel(db, [job_id])
        return current

    monkeypatch.setattr(watch, "get_job", read_then_cancel)
    async with JobWatcher(db, recheck_interval=3600) as watcher:
        ended = await watcher.wait(job.id, timeout=10)
    assert ended.state == "cancelled"


async def test_a_job_that_does_not_end_in_time_raises_timeout(db: Database) -> None:
    job = await start(db)
    with pytest.raises(TimeoutError, match=f"job {job.id} is still active"):
        await queue.wait_for_end(db, job.id, timeout=0.2)
    assert (await queue.get_job(db, job.id)).state == "active"


async def test_an_unknown_job_raises_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match="999999"):
        await queue.wait_for_end(db, 999_999, timeout=10)
    with pytest.raises(queue.InvalidInput):
        await queue.wait_for_end(db, 0)


async def test_a_waiting_job_deleted_meanwhile_is_reported_gone(
        db: Database, reads: list[tuple[int, str]]) -> None:
    """Deleting a waiting job notifies nothing: the periodic re-read finds it gone."""
    sent = await queue.send(db, "w")
    async with JobWatcher(db, recheck_interval=0.1) as watcher:
        waiting = asyncio.create_task(watcher.wait(sent.id, timeout=10))
        await wait_until(lambda: reads, message="the first read")
        await queue.delete(db, [sent.id])
        with pytest.raises(NotFound):
            await waiting


async def test_one_watcher_serves_many_waits(
        db: Database, reads: list[tuple[int, str]]) -> None:
    jobs = [await start(db) for _ in range(3)]
    async with JobWatcher(db, recheck_interval=3600) as watcher:
        waits = [asyncio.create_task(watcher.wait(job.id, timeout=10)) for job in jobs]
        twice = asyncio.create_task(watcher.wait(jobs[0].id, timeout=10))
        await wait_until(lambda: len(reads) == 4, message="the first reads")
        await queue.complete_many(db, [(job.id, job.id) for job in jobs])
        ended = await asyncio.gather(*waits, twice)
    assert [job.output for job in ended] == [jobs[0].id, jobs[1].id, jobs[2].id, jobs[0].id]
    assert watcher._cues == {}


async def test_an_end_while_the_listener_is_deaf_is_found_after_it_listens_again(
        db: Database, reads: list[tuple[int, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    job = await start(db)
    async with JobWatcher(db, recheck_interval=3600) as watcher:
        waiting = asyncio.create_task(watcher.wait(job.id, timeout=20))
        await wait_until(lambda: reads, message="the first read")
        gate = asyncio.Event()
        connect = db.connect_direct

        async def connect_when_let() -> object:
            await gate.wait()
            return await connect()

        monkeypatch.setattr(db, "connect_direct", connect_when_let)
        await db.pool.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'ms8-jobs direct' AND datname = current_database()")
        await wait_until(lambda: not watcher._listener.listening.is_set(),
                         message="the listener to notice")
        await queue.complete(db, job.id, "while deaf")  # nobody hears this notification
        gate.set()
        ended = await waiting
    assert ended.output == "while deaf"
    assert reads == [(job.id, "active"), (job.id, "completed")]


async def test_changes_yields_each_progress_report_then_the_end(db: Database) -> None:
    job = await start(db)
    seen: list[tuple[str, int, str | None]] = []
    async with JobWatcher(db, recheck_interval=3600) as watcher:
        async for current in watcher.changes(job.id):
            seen.append((current.state, current.progress, current.progress_message))
            if len(seen) == 1:
                await queue.set_progress(db, job.id, 40, "first source")
            elif len(seen) == 2:
                await queue.set_progress(db, job.id, 80, "second source")
            elif len(seen) == 3:
                await queue.complete(db, job.id, "done")
    assert seen == [("active", 0, None), ("active", 40, "first source"),
                    ("active", 80, "second source"), ("completed", 100, "second source")]
    assert watcher._cues == {}


async def test_changes_of_an_unknown_job_raise_not_found(db: Database) -> None:
    async with JobWatcher(db) as watcher:
        with pytest.raises(NotFound):
            async for _job in watcher.changes(424242):
                pass
