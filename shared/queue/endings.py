"""Awaiting a job's end from Python: one LISTEN on the events channel for any number of waits.

Race-free by order: the watcher is LISTENing before any wait starts, and a wait registers
itself *before* it reads the job, so an end committed between that read and the wait is
still heard. A notification is only a cue to re-read the job (its finished row is in
history); the table is the truth. The cue can be missed only while the listener is deaf,
so every wait re-reads after each re-LISTEN, and every ``recheck_interval`` seconds in
any case (a waiting job deleted outright notifies nothing; the re-read reports it gone).

    wait(id) ──register──► read ──finished──► the job
                            ▲  └─not yet──► sleep until cue | recheck_interval | timeout
                            └──────────────────────┘
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any

from shared.db import Database
from shared.listener import Listener
from shared.queue import validation as check
from shared.queue.models import FINISHED_STATES, Job
from shared.queue.read import get_job


class EndWatcher:
    """Waits for the ends of jobs over one direct connection; use as an async context
    manager (or ``start()``/``stop()``), then ``await watcher.wait(job_id)``."""

    def __init__(self, db: Database, *, recheck_interval: float = 30.0) -> None:
        self._db = db
        self._recheck_interval = recheck_interval
        self._cues: dict[int, set[asyncio.Event]] = {}
        self._listener = Listener(db, ["events"], self._on_notify, on_connect=self._cue_all)

    async def start(self) -> None:
        await self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    async def __aenter__(self) -> EndWatcher:
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
        cue = asyncio.Event()
        self._cues.setdefault(job_id, set()).add(cue)
        try:
            while True:
                cue.clear()  # before the read: a cue arriving during it is kept
                job = await get_job(self._db, job_id)
                if job.finished:
                    return job
                if not await self._pause(cue, deadline):
                    raise TimeoutError(f"job {job_id} is still {job.state} after {timeout} s")
        finally:
            waiting = self._cues.get(job_id)
            if waiting is not None:
                waiting.discard(cue)
                if not waiting:
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
        if payload.get("state") not in FINISHED_STATES:
            return
        for job_id in payload.get("ids", ()):
            for cue in self._cues.get(job_id, ()):
                cue.set()

    async def _cue_all(self) -> None:
        """After a (re)LISTEN: whatever ended while deaf is found by re-reading."""
        for cues in self._cues.values():
            for cue in cues:
                cue.set()


async def wait_for_end(db: Database, job_id: int, timeout: float | None = None) -> Job:
    """The job once it has ended, awaited by NOTIFY (see ``EndWatcher.wait``).

    Opens a listening connection for this one wait, within ``timeout``; to await many
    jobs, share one ``EndWatcher``.
    """
    job_id = check.job_id(job_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    watcher = EndWatcher(db)
    try:
        async with asyncio.timeout(timeout):
            await watcher.start()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return await watcher.wait(job_id, left)
    finally:
        await watcher.stop()
