"""Watching jobs from Python: one LISTEN on the events channel for any number of watches.

Race-free by order: the watcher is LISTENing before any watch starts, and a watch registers
itself *before* it reads the job, so a change committed between that read and the wait is
still heard. A notification is only a cue to re-read the job (a finished one is read from
history); the table is the truth. A cue can be missed only while the listener is deaf, so
every watch re-reads after each re-LISTEN, and every ``recheck_interval`` seconds in any
case (a waiting job deleted outright notifies nothing; the re-read reports it gone).

    watch(id) ──register──► read ──finished──► done
                             ▲  └─not yet──► sleep until cue | recheck_interval | timeout
                             └──────────────────────┘

``wait`` is cued by ends only; ``changes`` by every state change and progress report.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from shared.db import Database
from shared.listener import Listener
from shared.queue import validation as check
from shared.queue.models import FINISHED_STATES, Job
from shared.queue.read import get_job


class JobWatcher:
    """Watches jobs over one direct connection; use as an async context manager (or
    ``start()``/``stop()``), then ``await watcher.wait(job_id)`` or
    ``async for job in watcher.changes(job_id)``."""

    def __init__(self, db: Database, *, recheck_interval: float = 30.0) -> None:
        self._db = db
        self._recheck_interval = recheck_interval
        # job id → {cue: True if only its end matters}
        self._cues: dict[int, dict[asyncio.Event, bool]] = {}
        self._listener = Listener(db, ["events"], self._on_notify, on_connect=self._cue_all)

    async def start(self) -> None:
        await self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    async def __aenter__(self) -> JobWatcher:
        await self.start()
        return self

    async def __aexit__(self, _type: type[BaseException] | None, _error: BaseException | None,
                        _tb: TracebackType | None) -> None:
        await self.stop()

    async def wait(self, job_id: int, timeout: float | None = None) -> Job:
        """The job once it has ended (completed, failed or cancelled).

        Raises ``NotFound`` for an unknown job (or one deleted meanwhile) and
        ``TimeoutError`` when ``timeout`` seconds pass first.
        """
        job_id = check.job_id(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._registered(job_id, ends_only=True) as cue:
            while True:
                cue.clear()  # before the read: a cue arriving during it is kept
                job = await get_job(self._db, job_id)
                if job.finished:
                    return job
                if not await self._pause(cue, deadline):
                    raise TimeoutError(f"job {job_id} is still {job.state} after {timeout} s")

    async def changes(self, job_id: int) -> AsyncGenerator[Job, None]:
        """The job now, then again after every change of its state or progress; the last
        one yielded is the finished job. Raises ``NotFound`` as ``wait`` does."""
        job_id = check.job_id(job_id)
        with self._registered(job_id, ends_only=False) as cue:
            last: Job | None = None
            while True:
                cue.clear()
                job = await get_job(self._db, job_id)
                if last is None or _news(job, last):
                    last = job
                    yield job
                if job.finished:
                    return
                await self._pause(cue, None)

    @contextmanager
    def _registered(self, job_id: int, *, ends_only: bool) -> Iterator[asyncio.Event]:
        cue = asyncio.Event()
        self._cues.setdefault(job_id, {})[cue] = ends_only
        try:
            yield cue
        finally:
            cues = self._cues.get(job_id)
            if cues is not None:
                cues.pop(cue, None)
                if not cues:
                    del self._cues[job_id]

    async def _pause(self, cue: asyncio.Event, deadline: float | None) -> bool:
        """Sleep until the cue or the next re-read; False once the deadline has passed."""
        pause = self._recheck_interval
        if deadline is not None:
            pause = min(pause, deadline - time.monotonic())
            if pause <= 0:
                return False
        try:
            await asyncio.wait_for(cue.wait(), pause)
        except TimeoutError:
            return deadline is None or time.monotonic() < deadline
        return True

    def _on_notify(self, _channel: str, payload: dict[str, Any]) -> None:
        ended = payload.get("state") in FINISHED_STATES
        for job_id in payload.get("ids", ()):
            for cue, ends_only in self._cues.get(job_id, {}).items():
                if ended or not ends_only:
                    cue.set()

    async def _cue_all(self) -> None:
        """After a (re)LISTEN: whatever happened while deaf is found by re-reading."""
        for cues in self._cues.values():
            for cue in cues:
                cue.set()


def _news(job: Job, last: Job) -> bool:
    # A heartbeat alone is not news (and is not notified either).
    return dataclasses.replace(job, heartbeat_at=None) != dataclasses.replace(
        last, heartbeat_at=None)


async def wait_for_end(db: Database, job_id: int, timeout: float | None = None) -> Job:
    """The job once it has ended, awaited by NOTIFY (see ``JobWatcher.wait``).

    Opens a listening connection for this one wait, within ``timeout``; to await many
    jobs, share one ``JobWatcher``.
    """
    job_id = check.job_id(job_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    watcher = JobWatcher(db)
    try:
        async with asyncio.timeout(timeout):
            await watcher.start()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return await watcher.wait(job_id, left)
    finally:
        await watcher.stop()
