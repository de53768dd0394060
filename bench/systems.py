"""What the shared scenarios need from a job system, so that every system runs the same ones.

Each system (ms8-jobs, PGQueuer, Procrastinate, pg-boss, BullMQ) says how to install itself into an
empty database, how to enqueue many jobs at once and one at a time, which worker
processes to start (with their fastest documented settings), how many jobs are still
unfinished, and — read back from its own tables — when the first of a set of jobs
started and the last one finished. Optional extras, looked up with ``getattr``: a
``lifetime(log_dir)`` context for a server of its own (BullMQ's Redis), ``claim_times``
(when each probe job's claim began), ``server_seconds()`` (its store's CPU, when that is
not the PostgreSQL server) and ``activity()`` (what its idle worker asks of a store that
is not PostgreSQL). Two kinds of job exist: ``noop`` (does nothing) and
``probe`` (reports its start time through ``bench.probe`` and does nothing else).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg

WorkerSpec = tuple[str, Sequence[str], Mapping[str, str]]
#: Sends one probe job; returns when it is acknowledged, with the sender's own wall-clock
#: time of that moment when the sender runs in another process (else None: the caller
#: takes ``time.time()`` itself).
SendOne = Callable[[str], Awaitable[float | None]]


@dataclass(frozen=True)
class Window:
    """Jobs finished, and the span from the first start to the last finish, per the database."""

    finished: int
    first_start: datetime | None
    last_finish: datetime | None

    @property
    def seconds(self) -> float | None:
        if self.first_start is None or self.last_finish is None:
            return None
        return (self.last_finish - self.first_start).total_seconds()

    @property
    def rate(self) -> float | None:
        seconds = self.seconds
        return self.finished / seconds if seconds else None


class System(Protocol):
    name: str
    #: How the worker is configured, for the report.
    settings_text: str

    async def install(self, url: str) -> None:
        """Create the system's schema in an empty database."""

    async def enqueue_many(self, url: str, n: int) -> float:
        """Enqueue ``n`` noop jobs in the system's bulk API; returns the seconds it took
        from the payloads to the commit (connection already open)."""

    def sender(self, url: str) -> AbstractAsyncContextManager[SendOne]:
        """An open client whose ``send(seq)`` enqueues one probe job and returns at commit
        (see ``SendOne``)."""

    def workers(self, url: str, count: int, env: Mapping[str, str]) -> list[WorkerSpec]:
        """The worker processes to start: (name, argv, env)."""

    async def unfinished(self, conn: asyncpg.Connection) -> int:
        """Jobs not finished yet (waiting or running)."""

    async def window(self, conn: asyncpg.Connection) -> Window:
        """Finished jobs and their first start / last finish, from the system's tables."""

