"""What the core hands out: plain frozen dataclasses, built from rows, with no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import orjson

WAITING_STATES = ("created", "retry")
ACTIVE_STATES = ("active",)
FINISHED_STATES = ("completed", "failed", "cancelled")
ALL_STATES = WAITING_STATES + ACTIVE_STATES + FINISHED_STATES


def _json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    queue: str
    state: str
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
    progress: int
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
    # Runs lost with their worker (killed, or stalled): they spend no attempt.
    crash_count: int

    @classmethod
    def from_record(cls, row: Any) -> Job:
        return cls.from_records([row])[0]

    @classmethod
    def from_records(cls, rows: list[Any]) -> list[Job]:
        """Jobs of rows of one statement. On the hot path (a worker builds one per job
        fetched): rows of jobs or history selected whole come in column order, which is
        the order of the fields, so they are read by position (the columns are checked
        once per statement); any other row is read by name. The slots are filled
        directly, as the frozen dataclass's ``__init__`` would (it costs 27 calls of
        ``object.__setattr__`` a job: ~1.5 µs of the worker's ~30 µs)."""
        if not rows:
            return []
        by_position = tuple(rows[0].keys()) == _JOB_FIELDS
        jobs = []
        for row in rows:
            values = list(row) if by_position else [row[name] for name in _JOB_FIELDS]
            values[_STATE] = str(values[_STATE])
            values[_DATA] = _json(values[_DATA])
            values[_OUTPUT] = _json(values[_OUTPUT])
            job = _new(cls)
            for setter, value in zip(_SETTERS, values, strict=True):
                setter(job, value)
            jobs.append(job)
        return jobs

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


_JOB_FIELDS = tuple(f.name for f in fields(Job))
_STATE, _DATA, _OUTPUT = (_JOB_FIELDS.index(name) for name in ("state", "data", "output"))
_SETTERS = tuple(getattr(Job, name).__set__ for name in _JOB_FIELDS)  # the slots' descriptors
_new = object.__new__


@dataclass(frozen=True, slots=True)
class Sent:
    """The result of a send: the job's id, and False when an existing job was returned."""

    id: int
    created: bool


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    name: str
    retry_limit: int
    retry_delay_seconds: float
    retry_backoff: bool
    retry_delay_max_seconds: float
    run_timeout_seconds: float | None
    retention_seconds: float
    dead_letter: str | None
    fleet_limit: int | None
    paused: bool
    # How many workers a job may crash (die or stall while running it) before it fails.
    crash_limit: int = 5
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_record(cls, row: Any) -> QueuePolicy:
        return cls(**{name: row[name] for name in cls.__slots__})


@dataclass(frozen=True, slots=True)
class BatchTotals:
    waiting: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @classmethod
    def from_counts(cls, counts: dict[str, int]) -> BatchTotals:
        return cls(
            waiting=counts.get("created", 0) + counts.get("retry", 0),
            active=counts.get("active", 0),
            completed=counts.get("completed", 0),
            failed=counts.get("failed", 0),
            cancelled=counts.get("cancelled", 0),
        )


@dataclass(frozen=True, slots=True)
class Batch:
    id: int
    name: str
    total: int
    sealed: bool
    on_complete_queue: str | None
    on_complete_data: Any
    created_at: datetime
    finished_at: datetime | None
    completion_job_id: int | None
    totals: BatchTotals = field(default_factory=BatchTotals)

    @classmethod
    def from_record(cls, row: Any) -> Batch:
        counts = _json(row["counts"]) if "counts" in row.keys() else _json(row["totals"])
        return cls(
            id=row["id"], name=row["name"], total=row["total"], sealed=row["sealed"],
            on_complete_queue=row["on_complete_queue"],
            on_complete_data=_json(row["on_complete_data"]),
            created_at=row["created_at"], finished_at=row["finished_at"],
            completion_job_id=row["completion_job_id"],
            totals=BatchTotals.from_counts(counts or {}),
        )


@dataclass(frozen=True, slots=True)
class FailResult:
    """How one failure was handled: retried at ``start_after``, or failed for good."""

    id: int
    state: str
    start_after: datetime | None
    dead_letter_id: int | None
