"""The queue interface: one ``typing.Protocol``, the types it speaks, no I/O.

``JobQueue`` is what a service codes against to send jobs and follow them; which queue is
behind it is chosen where it is built:

- ``ms8_client.http.HttpJobQueue``   — over the HTTP API (another process, another host);
- ``ms8_client.local.LocalJobQueue`` — over the queue core, in this process.

Both raise the errors of ``ms8_client.errors`` and return the same ``Job`` and ``Sent``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, TypedDict, Unpack, runtime_checkable

FINISHED_STATES = ("completed", "failed", "cancelled")


class SendOptions(TypedDict, total=False):
    """Options of one job; those left out take the queue's policy."""

    priority: int  # -1000..1000, higher runs first (default 0)
    start_after: datetime  # not before this instant (timezone-aware)
    delay: float  # not before this many seconds from now (not with start_after)
    retry_limit: int
    retry_delay: float  # seconds before the first retry
    retry_backoff: bool  # double the delay at each retry
    retry_delay_max: float
    run_timeout: float  # seconds a run may last
    singleton_key: str  # while a job of the queue with this key waits or runs, add returns it


@dataclass(frozen=True, slots=True)
class Sent:
    """The result of ``add``: the job's id, and False when an existing job was returned
    (its singleton key was taken, or the idempotency key was used before)."""

    id: int
    created: bool


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the queue reports it (the fields of the API's ``Job``)."""

    id: int
    queue: str
    state: str  # created, retry, active, completed, failed, cancelled
    priority: int
    data: Any
    start_after: datetime
    attempt: int
    retry_limit: int
    retry_delay_seconds: float
    retry_backoff: bool
    retry_delay_max_seconds: float
    run_timeout_seconds: float | None
    singleton_key: str | None
    batch_id: int | None
    progress: int  # 0-100
    progress_message: str | None
    output: Any
    error_message: str | None
    error_traceback: str | None
    worker_id: str | None
    origin_id: int | None
    origin_queue: str | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    completed_at: datetime | None
    crash_count: int = 0  # runs lost with their worker (they spend no attempt)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Job:
        """A job of the API's JSON (fields it does not know are ignored)."""
        values: dict[str, Any] = {name: body.get(name) for name in JOB_FIELDS}
        values["crash_count"] = values["crash_count"] or 0  # absent from older servers
        for name in _DATETIMES:
            if isinstance(values[name], str):
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)

    def news_since(self, other: Job | None) -> bool:
        """Whether this differs from ``other`` by more than a heartbeat."""
        return other is None or replace(self, heartbeat_at=None) != replace(
            other, heartbeat_at=None)


JOB_FIELDS = tuple(f.name for f in fields(Job))
_DATETIMES = ("start_after", "created_at", "started_at", "heartbeat_at", "completed_at")


@runtime_checkable
class JobQueue(Protocol):
    """Send jobs, read their state, cancel them, await their end, follow their progress.

    Use it as an async context manager (or call ``close()``)::

        async with HttpJobQueue("https://jobs.example", api_key=key) as jobs:
            sent = await jobs.add("fresh-data", {"user_role": 42}, priority=10)
            job = await jobs.wait_for_end(sent.id, timeout=1800)
    """

    async def add(self, queue: str, data: Any = None, *, idempotency_key: str | None = None,
                  **options: Unpack[SendOptions]) -> Sent:
        """Send a job to ``queue`` with ``data`` (any JSON; default {}) and ``SendOptions``.

        With an ``idempotency_key``, sending again with the same key (within a day) and
        the same job returns the first result and sends nothing; with the same key and
        another job it raises ``IdempotencyKeyReused``.
        """
        ...

    async def get_status(self, job_id: int) -> Job:
        """The job as it is now; ``NotFound`` if there is none."""
        ...

    async def cancel(self, job_id: int) -> Job:
        """Cancel a waiting or active job (a running handler is stopped); returns it.
        ``InvalidState`` if it has already ended."""
        ...

    async def wait_for_end(self, job_id: int, timeout: float | None = None) -> Job:
        """The job once it has completed, failed or been cancelled (the seed's
        ``onComplete``); ``TimeoutError`` after ``timeout`` seconds."""
        ...

    def progress(self, job_id: int) -> AsyncIterator[Job]:
        """The job now and after each change of its state or progress, ending with the
        finished job."""
        ...

    async def close(self) -> None:
        """Release connections; the queue cannot be used afterwards."""
        ...

    async def __aenter__(self) -> JobQueue: ...

    async def __aexit__(self, _type: type[BaseException] | None,
                        _error: BaseException | None, _tb: TracebackType | None) -> None: ...
