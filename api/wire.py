"""How the core's objects look on the wire: plain JSON objects, one function per kind.

The shapes here are exactly those the OpenAPI document declares (``api/schemas.py``);
a field added to one must be added to the other, and the contract test catches a
mismatch. Datetimes are RFC 3339 strings in UTC; JSON is encoded with orjson.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from shared.queue import ALL_STATES, Batch, Firing, Job, QueuePolicy, Schedule, Worker

JOB_FIELDS = (
    "id", "queue", "state", "priority", "data", "start_after", "attempt", "retry_limit",
    "retry_delay_seconds", "retry_backoff", "retry_delay_max_seconds", "run_timeout_seconds",
    "singleton_key", "batch_id", "progress", "progress_message", "output", "error_message",
    "error_traceback", "worker_id", "origin_id", "origin_queue", "created_at", "started_at",
    "heartbeat_at", "completed_at", "crash_count",
)
POLICY_FIELDS = (
    "retry_limit", "retry_delay_seconds", "retry_backoff", "retry_delay_max_seconds",
    "run_timeout_seconds", "retention_seconds", "dead_letter", "fleet_limit", "paused",
    "crash_limit",
)


def dumps(value: Any) -> bytes:
    # Naive datetimes are the infinities PostgreSQL may hold (asyncpg reads them so): UTC.
    return orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
                        | orjson.OPT_NON_STR_KEYS)


def json_response(body: Any, status: int = 200, *,
                  headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(body), status, headers=dict(headers or {}),
                    media_type="application/json")


def job(value: Job) -> dict[str, Any]:
    return {name: getattr(value, name) for name in JOB_FIELDS}


def counts(by_state: Mapping[str, int] | None) -> dict[str, int]:
    by_state = by_state or {}
    return {state: int(by_state.get(state, 0)) for state in ALL_STATES}


def queue(policy: QueuePolicy, by_state: Mapping[str, int] | None, served: bool
          ) -> dict[str, Any]:
    body: dict[str, Any] = {"name": policy.name}
    body.update({name: getattr(policy, name) for name in POLICY_FIELDS})
    body["counts"] = counts(by_state)
    body["served"] = served
    body["created_at"] = policy.created_at
    body["updated_at"] = policy.updated_at
    return body


def batch(value: Batch) -> dict[str, Any]:
    totals = value.totals
    return {
        "id": value.id, "name": value.name, "total": value.total, "sealed": value.sealed,
        "on_complete_queue": value.on_complete_queue,
        "on_complete_data": value.on_complete_data,
        "created_at": value.created_at, "finished_at": value.finished_at,
        "completion_job_id": value.completion_job_id,
        "totals": {
            "waiting": totals.waiting, "active": totals.active, "completed": totals.completed,
            "failed": totals.failed, "cancelled": totals.cancelled,
        },
    }


def firing(value: Firing) -> dict[str, Any]:
    return {"id": value.id, "fire_time": value.fire_time, "kind": value.kind,
            "job_id": value.job_id, "job_created": value.job_created,
            "fired_at": value.fired_at}


def schedule(value: Schedule) -> dict[str, Any]:
    return {
        "name": value.name, "cron": value.cron, "timezone": value.timezone,
        "queue": value.queue, "data": value.data, "options": value.options,
        "enabled": value.enabled, "next_fire_at": value.next_fire(),
        "last_firing": None if value.last_firing is None else firing(value.last_firing),
        "created_at": value.created_at, "updated_at": value.updated_at,
    }


def worker(value: Worker) -> dict[str, Any]:
    return {"id": value.id, "host": value.host, "pid": value.pid, "queues": value.queues,
            "concurrency": value.concurrency, "started_at": value.started_at,
            "last_seen_at": value.last_seen_at, "active_jobs": value.active_jobs}
