"""What the analytics functions hand out: frozen dataclasses built from rows, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

COMPLETE = "complete"
PARTIAL = "partial"


def _json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


@dataclass(frozen=True, slots=True)
class UserRole:
    id: int
    user_id: str
    role_id: str
    active: bool
    updated_at: datetime

    @classmethod
    def from_record(cls, row: Any) -> UserRole:
        return cls(row["id"], row["user_id"], row["role_id"], row["active"], row["updated_at"])


@dataclass(frozen=True, slots=True)
class Missing:
    """A source that gave nothing for a snapshot, and why."""

    source: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class BreakerOpening:
    """A source's circuit breaker opening in one worker process: after consecutive
    failures (an outage beginning), or ``after_probe`` (still down after a cool-down)."""

    source: str
    opened_at: datetime
    after_probe: bool = False
    worker_id: str | None = None  # set once recorded

    @classmethod
    def from_record(cls, row: Any) -> BreakerOpening:
        return cls(row["source"], row["opened_at"], row["after_probe"], row["worker_id"])


@dataclass(frozen=True, slots=True)
class Snapshot:
    user_role_id: int
    day: date
    collected_at: datetime
    status: str
    data: dict[str, Any]
    missing: tuple[Missing, ...]
    duration_ms: int
    job_id: int | None
    batch_id: int | None

    @classmethod
    def from_record(cls, row: Any) -> Snapshot:
        return cls(
            user_role_id=row["user_role_id"], day=row["day"], collected_at=row["collected_at"],
            status=row["status"], data=_json(row["data"]),
            missing=tuple(Missing(m["source"], m["reason"]) for m in _json(row["missing"])),
            duration_ms=row["duration_ms"], job_id=row["job_id"], batch_id=row["batch_id"])


@dataclass(frozen=True, slots=True)
class NightlyRun:
    """A night's fan-out (cursor and batch) and, once its batch has ended, its summary."""

    night: date
    fire_time: datetime | None
    job_id: int | None
    batch_id: int | None
    last_user_role_id: int
    sent: int
    started_at: datetime
    fanned_out_at: datetime | None
    finished_at: datetime | None
    total: int | None
    complete: int | None
    partial: int | None
    failed: int | None
    cancelled: int | None
    duration_seconds: float | None
    source_failures: dict[str, int] | None

    @classmethod
    def from_record(cls, row: Any) -> NightlyRun:
        values = {name: row[name] for name in cls.__slots__}
        values["source_failures"] = _json(row["source_failures"])
        return cls(**values)

    @property
    def state(self) -> str:
        """fanning-out → running → finished."""
        if self.finished_at is not None:
            return "finished"
        return "running" if self.fanned_out_at is not None else "fanning-out"
