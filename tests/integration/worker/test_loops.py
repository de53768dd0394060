"""The worker's long-running loops: one that crashes on an unexpected exception (a bug in
one iteration) is started again, and the worker keeps working, with nothing it held lost.

Each test makes one loop raise once, from inside it, where a bug would."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from shared import queue
from shared.db import Database
from tests.support import wait_until
from worker.context import JobContext
from worker.runner import Runner

from .conftest import StartWorker


class Bug(RuntimeError):
    """What the loops never expect."""


def crash_once(original: Callable[..., Awaitable[Any]]) -> tuple[Callable[..., Any], list[int]]:
    """``original``, except that its first call raises ``Bug``; and the list of crashes."""
    crashes: list[int] = []

    async def crashing(*args: Any, **kwargs: Any) -> Any:
        if not crashes:
            crashes.append(1)
            raise Bug("a bug in one iteration")
        return await original(*args, **kwargs)

    return crashing, crashes


def restarted(runner: Runner, name: str) -> bool:
    """The service saw the crash and runs again."""
    service = runner.services[name]
    return service.failures == 1 and service.running


async def state_of(db: Database, job_id: int) -> str:
    return (await queue.get_job(db, job_id)).state


async def test_a_crashed_completer_loop_restarts_and_reports_what_it_held(
    db: Database, start_worker: StartWorker,
) -> None:
    runner = await start_worker({"work": _return_id}, MS8_WORKER_QUEUES="work=2")
    runner.completer.flush_once, crashes = crash_once(  # type: ignore[method-assign]
        runner.completer.flush_once)
    sent = await queue.send(db, "work")
    await wait_until(lambda: crashes, message="the completer's first flush crashed")
    # Nothing else ends here: the result held when the loop crashed must go by itself.
    await wait_until(lambda: _completed(db, sent.id), timeout=15,
                     message="the held result reported after the restart")
    assert restarted(runner, "completer")
    more = await queue.send(db, "work")
    await wait_until(lambda: _completed(db, more.id), message="a later job reported too")


async def test_a_crashed_heartbeat_loop_restarts_and_keeps_a_long_job_alive(
    db: Database, start_worker: StartWorker,
) -> None:
    release = asyncio.Event()

    async def long(ctx: JobContext) -> int:
        await release.wait()
        return ctx.job.id

    runner = await start_worker({"long": long}, MS8_WORKER_QUEUES="long=1",
                                MS8_STALL_SECONDS="10")
    sent = await queue.send(db, "long")
    await wait_until(lambda: _state_is(db, sent.id, "active"), message="the job running")
    runner.heartbeat.beat, crashes = crash_once(runner.heartbeat.beat)  # type: ignore[method-assign]
    await wait_until(lambda: crashes, message="a beat crashed")
    first = (await queue.get_job(db, sent.id)).heartbeat_at
    assert first is not None

    async def beaten_since() -> bool:
        last = (await queue.get_job(db, sent.id)).heartbeat_at
        return last is not None and last > first

    await wait_until(beaten_since, timeout=15, message="beats again after the restart")
    job = await queue.get_job(db, sent.id)
    assert (job.state, job.worker_id, job.crash_count) == ("active", runner.worker_id, 0)
    release.set()
    await wait_until(lambda: _completed(db, sent.id))
    assert (await queue.get_job(db, sent.id)).attempt == 1


async def test_a_crashed_fetch_loop_restarts_and_fetches_again(
    db: Database, start_worker: StartWorker,
) -> None:
    runner = await start_worker({"work": _return_id}, MS8_WORKER_QUEUES="work=2")
    runner.wakeup.wait, crashes = crash_once(runner.wakeup.wait)  # type: ignore[method-assign]
    runner.wakeup.notified("work", None)  # wake the loop into the crash
    await wait_until(lambda: crashes, message="the fetch loop crashed")
    sent = await queue.send(db, "work")
    await wait_until(lambda: _completed(db, sent.id), timeout=15,
                     message="a job fetched after the restart")
    assert restarted(runner, "fetch")


async def test_a_crashed_listener_listens_again_and_the_worker_hears_new_jobs(
    db: Database, start_worker: StartWorker,
) -> None:
    """The safety poll is a minute away: only a listening worker runs this job soon."""
    runner = await start_worker({"work": _return_id}, MS8_WORKER_QUEUES="work=2")
    listener = runner.listener
    assert listener is not None
    reconnects = listener.reconnects
    listener._watch, crashes = crash_once(listener._watch)  # type: ignore[method-assign]
    listener._lost.set()  # end the current watch: the next one crashes
    await wait_until(lambda: crashes, message="the listener's watch crashed")
    # Two reconnects: after the watch that was ended, and after the one that crashed.
    await wait_until(lambda: listener.reconnects >= reconnects + 2
                     and listener.listening.is_set(), timeout=15, message="listening again")
    sent = await queue.send(db, "work")
    await wait_until(lambda: _completed(db, sent.id), timeout=10,
                     message="a job heard of after the restart")


async def _return_id(ctx: JobContext) -> int:
    return ctx.job.id


async def _state_is(db: Database, job_id: int, state: str) -> bool:
    return await state_of(db, job_id) == state


async def _completed(db: Database, job_id: int) -> bool:
    return await _state_is(db, job_id, "completed")
