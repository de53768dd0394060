"""What a handler receives: the job, a way to report progress, and shared clients.

A handler is ``async def handle(ctx: JobContext) -> output``; what it returns (anything
JSON can carry) becomes the job's output. Raising fails the attempt (it retries while
attempts are left); raising ``PermanentError`` fails the job for good. Handlers are
cancelled (``asyncio.CancelledError``) when the job is cancelled, reclaimed, times out,
or the worker stops: they should let that exception through.

A handler that needs longer than its run timeout says so as it goes:
``await ctx.extend_deadline(600)`` ("ten more minutes from now"), up to the worker's
``MS8_MAX_RUN_SECONDS`` from the start of the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx

from shared import queue
from shared.db import Database, is_connection_error
from shared.logging import get_logger
from shared.queue import MAX_RUN_TIMEOUT_SECONDS, Job
from worker.clients import Clients


class PermanentError(Exception):
    """Raised by a handler: fail the job now, without using the attempts it has left."""


@dataclass
class JobContext:
    """One run of one job. ``data`` and ``attempt`` are shortcuts into ``job``."""

    job: Job
    worker_id: str
    db: Database
    _clients: Clients = field(repr=False)
    # Told the seconds left after an extension (the executor re-arms its timer).
    _on_deadline: Callable[[float], None] | None = field(default=None, repr=False)
    max_run_seconds: float = MAX_RUN_TIMEOUT_SECONDS
    _log: Any = field(default=None, init=False, repr=False)

    @property
    def log(self) -> Any:
        """A logger bound to the job (built on first use: most handlers never log)."""
        if self._log is None:
            self._log = get_logger("worker.job").bind(
                job_id=self.job.id, queue=self.job.queue, attempt=self.job.attempt)
        return self._log

    @property
    def data(self) -> Any:
        return self.job.data

    @property
    def attempt(self) -> int:
        return self.job.attempt

    @property
    def http(self) -> httpx.AsyncClient:
        """The worker's shared HTTP client (connection pooling across jobs)."""
        return self._clients.http()

    @property
    def aiohttp(self) -> aiohttp.ClientSession:
        """The worker's shared aiohttp session, for many small requests at once (a
        fraction of httpx's CPU per request; see ``worker.clients``)."""
        return self._clients.aiohttp()

    async def progress(self, percent: int, message: str | None = None) -> bool:
        """Report progress (0-100, optional message); watchers see it at once.

        Best effort: while the database is unreachable the report is dropped (the job
        carries on) and False is returned. A value out of range is a bug and raises
        ``InvalidInput``.
        """
        try:
            return await queue.set_progress(
                self.db, self.job.id, percent, message, worker_id=self.worker_id)
        except Exception as error:
            if not is_connection_error(error):
                raise
            self.db.outage.report("progress", error)
            return False

    async def extend_deadline(self, seconds: float) -> float | None:
        """Let the job run ``seconds`` more from now before it times out; returns the
        seconds it has left (None when it has no run timeout).

        Recorded in the job (its run timeout grows), so maintenance honours it too. Past
        ``max_run_seconds`` from the start of the run it raises ``InvalidInput``, as for
        a value that is not a positive number of seconds; unlike progress, a database
        error is raised too, since the deadline would not have moved.
        """
        left = await queue.extend_deadline(
            self.db, self.job.id, seconds, worker_id=self.worker_id,
            max_run_seconds=self.max_run_seconds)
        if left is not None:
            self.log.info("deadline extended", seconds=seconds, seconds_left=round(left, 3))
            if self._on_deadline is not None:
                self._on_deadline(left)
        return left
