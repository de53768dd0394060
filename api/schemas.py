"""The JSON Schemas of every body the API reads or writes: one definition, used both to
validate requests (``api/validator.py``) and to publish ``/openapi.json``.

Request schemas are exactly as strict as the server: a body that matches is accepted
(unless it names a missing object or clashes with the state of one), a body that does
not is refused with the field named. Limits repeat those of ``shared.queue.validation``;
strings may not contain NUL, which PostgreSQL cannot store.
"""

from __future__ import annotations

from typing import Any

from api.validator import SchemaViolation
from shared.queue import ALL_STATES, FINISHED_STATES, SCHEDULE_JOB_OPTIONS
from shared.queue import validation as limits

Schema = dict[str, Any]

NO_NUL = r"^[^\u0000]*$"
QUEUE_PATTERN = "^[a-z0-9][a-z0-9_.-]{0,62}$"
CURSOR_PATTERN = "^[0-7][0-9a-f]{15}$"
DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
IDEMPOTENCY_KEY_PATTERN = "^[!-~]{1,200}$"
MAX_ID = limits.MAX_ID


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    out = dict(schema)
    kind = out["type"]
    out["type"] = [kind, "null"] if isinstance(kind, str) else [*kind, "null"]
    return out


def obj(properties: dict[str, Schema], required: list[str] | None = None, **extra: Any
        ) -> Schema:
    """An object with exactly these properties (no others)."""
    schema: Schema = {"type": "object", "properties": properties,
                      "additionalProperties": False}
    if required is None:
        required = list(properties)
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


def text(max_length: int | None = None, min_length: int = 0, **extra: Any) -> Schema:
    schema: Schema = {"type": "string", "pattern": NO_NUL,
                      "description": "text without NUL characters"}
    if min_length:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    schema.update(extra)
    return schema


def integer(low: int | None = None, high: int | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "integer"}
    if low is not None:
        schema["minimum"] = low
    if high is not None:
        schema["maximum"] = high
    schema.update(extra)
    return schema


def seconds(high: float, *, above_zero: bool = False, **extra: Any) -> Schema:
    schema: Schema = {"type": "number", "maximum": high}
    if above_zero:
        schema["exclusiveMinimum"] = 0
    else:
        schema["minimum"] = 0
    schema.update(extra)
    return schema


QUEUE_NAME: Schema = {
    "type": "string", "pattern": QUEUE_PATTERN,
    "description": "a queue name: 1-63 characters of a-z, 0-9, '_', '.', '-', starting "
                   "with a letter or digit",
}
ID: Schema = integer(1, MAX_ID)
TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
# What a client may send: years 1970 to 9999 as written (the instant stays finite).
INPUT_TIMESTAMP: Schema = {
    **TIMESTAMP, "pattern": "^(19[7-9][0-9]|[2-9][0-9]{3})-.+$",
    "description": "an RFC 3339 date-time in the years 1970 to 9999"}
STATE: Schema = {"type": "string", "enum": list(ALL_STATES)}


def _job_spec() -> Schema:
    return obj(
        {
            "queue": QUEUE_NAME,
            "data": {**ref("JsonValue"), "description": "any JSON (default {}); at most "
                     f"{limits.MAX_DATA_BYTES} bytes once encoded"},
            "priority": integer(limits.PRIORITY_MIN, limits.PRIORITY_MAX,
                                description="higher runs first (default 0)"),
            "start_after": {**INPUT_TIMESTAMP, "description": (
                "an RFC 3339 date-time in the years 1970 to 9999; the job runs not before it")},
            "delay": seconds(limits.MAX_DELAY_SECONDS,
                             description="not before this many seconds from now"),
            "retry_limit": integer(0, limits.MAX_RETRY_LIMIT),
            "retry_delay": seconds(limits.MAX_RETRY_DELAY_SECONDS),
            "retry_backoff": {"type": "boolean"},
            "retry_delay_max": seconds(limits.MAX_RETRY_DELAY_SECONDS),
            "run_timeout": seconds(limits.MAX_RUN_TIMEOUT_SECONDS, above_zero=True),
            "singleton_key": text(limits.MAX_SINGLETON_KEY, 1, description=(
                "while a job of the queue with this key is waiting or active, sending "
                "another returns that job")),
        },
        required=["queue"],
        **{"not": {"required": ["start_after", "delay"]},
           "description": "A job to send. Options left out take the queue's policy."},
    )


def _job_options() -> Schema:
    """The options of the job a schedule sends (those of ``JobSpec`` that make sense)."""
    spec = _job_spec()["properties"]
    return obj({name: spec[name] for name in SCHEDULE_JOB_OPTIONS}, required=[],
               description="Options of each job the schedule sends.")


def _schedule_fields() -> dict[str, Schema]:
    return {
        "cron": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_NUL,
                 "description": "five fields (minute hour day month weekday), six with "
                                "seconds first, or a macro such as @daily"},
        "timezone": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_NUL,
                     "description": "an IANA time zone such as Europe/Berlin (default UTC)"},
        "queue": QUEUE_NAME,
        "data": ref("JsonValue"),
        "options": ref("JobOptions"),
        "enabled": {"type": "boolean"},
    }


def _schedule() -> Schema:
    return obj({
        "name": QUEUE_NAME, "cron": {"type": "string"}, "timezone": {"type": "string"},
        "queue": QUEUE_NAME, "data": ref("JsonValue"), "options": ref("JobOptions"),
        "enabled": {"type": "boolean"},
        "next_fire_at": {**nullable(TIMESTAMP), "description": "null while disabled"},
        "last_firing": {"anyOf": [ref("Firing"), {"type": "null"}]},
        "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
    })


def _job() -> Schema:
    return obj({
        "id": ID, "queue": QUEUE_NAME, "state": STATE,
        "priority": integer(limits.PRIORITY_MIN, limits.PRIORITY_MAX),
        "data": ref("JsonValue"), "start_after": TIMESTAMP, "attempt": integer(0),
        "retry_limit": integer(0), "retry_delay_seconds": {"type": "number"},
        "retry_backoff": {"type": "boolean"}, "retry_delay_max_seconds": {"type": "number"},
        "run_timeout_seconds": {"type": ["number", "null"]},
        "singleton_key": {"type": ["string", "null"]}, "batch_id": nullable(ID),
        "progress": integer(0, 100), "progress_message": {"type": ["string", "null"]},
        "output": ref("JsonValue"), "error_message": {"type": ["string", "null"]},
        "error_traceback": {"type": ["string", "null"]},
        "worker_id": {"type": ["string", "null"]}, "origin_id": nullable(ID),
        "origin_queue": {"type": ["string", "null"]}, "created_at": TIMESTAMP,
        "started_at": nullable(TIMESTAMP), "heartbeat_at": nullable(TIMESTAMP),
        "completed_at": nullable(TIMESTAMP),
        "crash_count": {**integer(0), "description": (
            "runs lost with their worker (killed or stalled); they spend no attempt")},
    })


_POLICY_INPUT: dict[str, Schema] = {
    "retry_limit": integer(0, limits.MAX_RETRY_LIMIT),
    "retry_delay_seconds": seconds(limits.MAX_RETRY_DELAY_SECONDS),
    "retry_backoff": {"type": "boolean"},
    "retry_delay_max_seconds": seconds(limits.MAX_RETRY_DELAY_SECONDS),
    "run_timeout_seconds": nullable(seconds(limits.MAX_RUN_TIMEOUT_SECONDS, above_zero=True)),
    "retention_seconds": seconds(10 * 366 * 86400),
    "dead_letter": {**nullable(QUEUE_NAME), "description": (
        "queue that receives a copy of each failed job (not the queue itself)")},
    "fleet_limit": nullable(integer(1, 100_000)),
    "paused": {"type": "boolean"},
    "crash_limit": {**integer(1, limits.MAX_CRASH_LIMIT), "description": (
        "how many workers a job may crash (die or stall while running it) before it fails")},
}


def _counts(names: tuple[str, ...] | list[str]) -> Schema:
    return obj({name: integer(0) for name in names})


def _queue() -> Schema:
    properties: dict[str, Schema] = {"name": QUEUE_NAME}
    properties.update({
        "retry_limit": integer(0), "retry_delay_seconds": {"type": "number"},
        "retry_backoff": {"type": "boolean"}, "retry_delay_max_seconds": {"type": "number"},
        "run_timeout_seconds": {"type": ["number", "null"]},
        "retention_seconds": {"type": "number"}, "dead_letter": nullable(QUEUE_NAME),
        "fleet_limit": {"type": ["integer", "null"]}, "paused": {"type": "boolean"},
        "crash_limit": integer(1),
        "counts": ref("StateCounts"),
        "served": {"type": "boolean", "description": (
            "whether a live worker (one seen in the registry lately) runs this queue")},
        "created_at": nullable(TIMESTAMP), "updated_at": nullable(TIMESTAMP),
    })
    return obj(properties)


def _batch() -> Schema:
    return obj({
        "id": ID, "name": {"type": "string"}, "total": integer(0),
        "sealed": {"type": "boolean"}, "on_complete_queue": nullable(QUEUE_NAME),
        "on_complete_data": ref("JsonValue"), "created_at": TIMESTAMP,
        "finished_at": nullable(TIMESTAMP), "completion_job_id": nullable(ID),
        "totals": ref("BatchTotals"),
    })


def _analytics() -> dict[str, Schema]:
    """The MS8 analytics: nightly runs with their summaries, and snapshots."""
    day: Schema = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
    count = nullable(integer(0))
    return {
        "NightlySummary": obj({
            "total": count, "complete": count, "partial": count, "failed": count,
            "cancelled": count, "duration_seconds": {"type": ["number", "null"]},
            "source_failures": {
                "type": ["object", "null"], "additionalProperties": integer(0),
                "description": "{source: snapshots missing it}, the most failed first"}}),
        "NightlyRun": obj({
            "night": {**day, "description": "the night, as its date in UTC"},
            "state": {"type": "string", "enum": ["fanning-out", "running", "finished"]},
            "fire_time": nullable(TIMESTAMP), "job_id": nullable(ID),
            "batch_id": nullable(ID),
            "sent": integer(0, description="collect-analytics jobs sent for the night"),
            "started_at": TIMESTAMP, "fanned_out_at": nullable(TIMESTAMP),
            "finished_at": nullable(TIMESTAMP),
            "summary": {"anyOf": [ref("NightlySummary"), {"type": "null"}],
                        "description": "null until the night's batch has finished"}}),
        "NightlyRunPage": obj({
            "nightly_runs": {"type": "array", "items": ref("NightlyRun")},
            "next_cursor": {"type": ["string", "null"]}}),
        "Snapshot": obj({
            "user_role_id": ID, "day": day, "collected_at": TIMESTAMP,
            "status": {"type": "string", "enum": ["complete", "partial"]},
            "data": {"type": "object", "additionalProperties": {"type": "object"},
                     "description": "{source: what it answered}"},
            "missing": {"type": "array", "items": obj({
                "source": {"type": "string"}, "reason": {"type": "string"}})},
            "duration_ms": integer(0), "job_id": nullable(ID), "batch_id": nullable(ID)}),
        "FreshDataJob": obj({
            "id": ID,
            "created": {"type": "boolean", "description": (
                "false when the user-role's job already waited or ran: that job")},
            "user_role_id": ID,
            "warnings": _WARNINGS,
        }, required=["id", "created", "user_role_id"]),
    }


def _timelines() -> dict[str, Schema]:
    """How the numbers moved: dense series, one value per bucket of ``at``."""
    frame: dict[str, Schema] = {
        "since": {**TIMESTAMP, "description": "the start of the first bucket"},
        "until": {**TIMESTAMP, "description": "the end of the last bucket"},
        "step_seconds": integer(60, description="the width of a bucket"),
        "at": {"type": "array", "items": TIMESTAMP, "description": "each bucket's start"},
    }
    counts: Schema = {"type": "array", "items": integer(0)}
    sampled: Schema = {"type": "array", "items": nullable(integer(0)),
                       "description": "null where no sample was taken"}
    seconds_or_null: Schema = {"type": ["number", "null"], "minimum": 0}
    per_bucket_seconds: Schema = {"type": "array", "items": seconds_or_null}
    timing_totals = {f"{kind}_{name}_seconds": seconds_or_null
                     for kind in ("run", "wait") for name in ("p50", "p95", "max")}
    return {
        "Throughput": obj({**frame, "queues": {"type": "array", "items": obj({
            "queue": QUEUE_NAME,
            **{state: {**counts, "description": f"jobs that ended {state}"}
               for state in FINISHED_STATES},
            "run_p50_seconds": {**per_bucket_seconds, "description": (
                "median run time (started to ended), estimated from its buckets")},
            "run_p95_seconds": per_bucket_seconds,
            "wait_p95_seconds": {**per_bucket_seconds, "description": (
                "95th percentile of the wait from due to started")},
            "totals": obj({**{state: integer(0) for state in FINISHED_STATES},
                           **timing_totals}),
        })}}),
        "QueueDepth": obj({**frame, "queues": {"type": "array", "items": obj({
            "queue": QUEUE_NAME,
            "waiting": {**sampled, "description": "waiting jobs (created, retry): peak"},
            "active": sampled,
            "oldest_waiting_seconds": {
                "type": "array", "items": seconds_or_null,
                "description": "age of the oldest due job (0: none): peak"},
        })}}),
        "FleetLoad": obj({**frame, "workers": sampled, "slots": sampled,
                          "busy": {**sampled, "description": "slots running a job: peak"}}),
        "BreakerOpening": obj({
            "source": {"type": "string"}, "worker_id": {"type": "string"},
            "opened_at": TIMESTAMP,
            "after_probe": {"type": "boolean", "description": (
                "opened again by a failed probe (still down), not by an outage beginning")}}),
        "NightlyProgress": obj({
            "night": {"type": "string", "format": "date", "pattern": DATE_PATTERN},
            "state": {"type": "string", "enum": ["fanning-out", "running", "finished"]},
            "total": integer(0, description=(
                "user-roles of the night (while fanning out: the active ones)")),
            "done": integer(0), "complete": integer(0), "partial": integer(0),
            "failed": integer(0), "cancelled": integer(0), "waiting": integer(0),
            "active": integer(0), "percent": {"type": "number", "minimum": 0},
            "rate_per_minute": {"type": ["number", "null"], "minimum": 0, "description": (
                "jobs ended per minute: of the last five minutes while running, the "
                "night's average afterwards")},
            "expected_end": {**nullable(TIMESTAMP), "description": (
                "at the recent rate; null once finished or while nothing ends")},
            "started_at": TIMESTAMP, "fanned_out_at": nullable(TIMESTAMP),
            "finished_at": nullable(TIMESTAMP),
            "duration_seconds": {"type": "number", "minimum": 0, "description": (
                "from the start of the fan-out to the batch's end, or to now")},
            "source_failures": {"type": "object", "additionalProperties": integer(0),
                                "description": "{source: snapshots missing it}, most first"},
            "timeline": obj({**frame, **{state: counts for state in FINISHED_STATES}},
                            description="collect-analytics jobs that ended, per bucket"),
            "breaker_openings": {"type": "array", "items": ref("BreakerOpening")},
        }),
    }


_WARNINGS: Schema = {
    "type": "array", "items": ref("Warning"), "minItems": 1,
    "description": "present when there is something to know: a queue that no live worker "
                   "serves (the jobs were accepted and wait until one does)"}


def components(max_jobs: int) -> dict[str, Schema]:
    """Every named schema of the document; ``max_jobs`` caps the jobs of one request."""
    job_list: Schema = {"type": "array", "items": ref("JobSpec"), "minItems": 1,
                        "maxItems": max_jobs}
    return {
        # Any JSON, described without a type: code generators choke on the recursive
        # anyOf that would spell it out (openapi-python-client drops every operation
        # using it, openapi-typescript's output fails tsc --strict). The validator walks
        # it with ``json_value``, which refuses what PostgreSQL cannot store (NUL).
        "JsonValue": {
            "description": "Any JSON value (object, array, string, number, boolean or "
                           "null); its strings and keys cannot contain NUL (\\u0000).",
        },
        "Error": obj(
            {"code": {"type": "string", "description": "stable, for programs"},
             "message": {"type": "string", "description": "for people; names the bad value"},
             "field": {"type": "string", "description": "the offending field or parameter"}},
            required=["code", "message"]),
        "JobSpec": _job_spec(),
        "SendResult": obj({
            "id": ID,
            "created": {"type": "boolean", "description": (
                "false when an existing job (same singleton key) was returned")},
            "warnings": _WARNINGS,
        }, required=["id", "created"]),
        "BulkSend": obj({"jobs": job_list}),
        "BulkSendResult": obj({"jobs": {"type": "array", "items": ref("SendResult")},
                               "warnings": _WARNINGS}, required=["jobs"]),
        "Warning": obj({
            "code": {"type": "string", "enum": ["queue_not_served"],
                     "description": "stable, for programs"},
            "queue": QUEUE_NAME,
            "message": {"type": "string", "description": "for people"}}),
        "BatchSpec": obj(
            {"name": text(200), "jobs": {**job_list, "minItems": 0},
             "on_complete_queue": {**QUEUE_NAME, "description": (
                 "queue that receives one job when the last child has ended")},
             "on_complete_data": ref("JsonValue")},
            required=["jobs"], dependentRequired={"on_complete_data": ["on_complete_queue"]}),
        "BatchCreated": obj({"id": ID,
                             "jobs": {"type": "array", "items": ref("SendResult")},
                             "warnings": _WARNINGS}, required=["id", "jobs"]),
        "Job": _job(),
        "JobPage": obj({
            "jobs": {"type": "array", "items": ref("Job")},
            "next_cursor": {"type": ["string", "null"], "description": (
                "pass as `cursor` for the next page; null on the last page")},
        }),
        "StateCounts": _counts(ALL_STATES),
        "Queue": _queue(),
        "QueueList": obj({"queues": {"type": "array", "items": ref("Queue")}}),
        "QueuePolicy": obj(_POLICY_INPUT, required=[], description=(
            "Settings to change; those left out keep their value (or the default, for a "
            "new queue). Applies to jobs sent afterwards.")),
        "RedriveResult": obj({"ids": {"type": "array", "items": ID}}),
        "CancelWaitingResult": obj({"cancelled": integer(0, description=(
            "how many waiting jobs were cancelled"))}),
        "BatchTotals": _counts(["waiting", "active", "completed", "failed", "cancelled"]),
        "Batch": _batch(),
        "BatchPage": obj({"batches": {"type": "array", "items": ref("Batch")},
                          "next_cursor": {"type": ["string", "null"]}}),
        "JobOptions": _job_options(),
        "ScheduleSpec": obj(
            {"name": {**QUEUE_NAME, "description": "the schedule's name (same rules as a "
                      "queue name)"}, **_schedule_fields()},
            required=["name", "cron", "queue"]),
        "ScheduleChange": obj(_schedule_fields(), required=[], description=(
            "Settings to change; options are replaced whole.")),
        "Firing": obj({
            "id": ID, "fire_time": TIMESTAMP,
            "kind": {"type": "string", "enum": ["scheduled", "catch-up", "manual"]},
            "job_id": nullable(ID), "job_created": {"type": ["boolean", "null"]},
            "fired_at": TIMESTAMP}),
        "Schedule": _schedule(),
        "ScheduleList": obj({"schedules": {"type": "array", "items": ref("Schedule")}}),
        "Worker": obj({
            "id": {"type": "string"}, "host": {"type": "string"}, "pid": {"type": "integer"},
            "queues": {"type": "object", "additionalProperties": {"type": "integer"},
                       "description": "{queue: concurrency}"},
            "concurrency": {"type": "integer"}, "started_at": TIMESTAMP,
            "last_seen_at": TIMESTAMP, "active_jobs": integer(0)}),
        "WorkerList": obj({"workers": {"type": "array", "items": ref("Worker")}}),
        **_analytics(),
        **_timelines(),
        "EventStreamText": {"type": "string", "description": "text/event-stream frames"},
        "MetricsText": {"type": "string", "description": "Prometheus text format"},
        "OpenApiDocument": {"type": "object", "description": "an OpenAPI 3.1 document"},
        "Live": obj({"status": {"type": "string", "enum": ["ok"]}}),
        "Ready": obj({
            "status": {"type": "string", "enum": ["ready", "unavailable"]},
            "database": {"type": "string", "enum": ["ok", "unreachable"]},
            "schema": {"type": "string", "description": (
                "where the schema stands against this code: current; compatible (newer, "
                "every newer migration additive: still ready); behind (migrate first); "
                "incompatible (newer, breaking); edited (an applied migration changed); "
                "empty; unknown (database unreachable)"), "enum": [
                "current", "compatible", "behind", "incompatible", "edited", "empty",
                "unknown"]},
            "schema_version": {"type": ["integer", "null"]},
            "expected_schema_version": {"type": "integer"},
            "listener": {"type": "string", "enum": ["listening", "reconnecting"]},
        }, required=["status"], description="the status; the rest only to a read key"),
    }


def json_value(value: Any, field: str) -> Any:
    """The ``JsonValue`` component: any JSON without NUL in its strings and keys, walked
    without recursion (data may nest deeply) and without naming each item's path, which
    would cost more than the walk; the path is found only for a value that fails."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise _nul_violation(value, field)
        elif isinstance(item, dict):
            if any("\x00" in key for key in item):
                raise _nul_violation(value, field)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


def _nul_violation(value: Any, field: str) -> Exception:
    """The violation naming where the first NUL of ``value`` is."""
    stack: list[tuple[Any, str]] = [(value, field)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return SchemaViolation(where, "strings cannot contain NUL (\\u0000)")
        elif isinstance(item, dict):
            for key, inner in item.items():
                if "\x00" in key:
                    return SchemaViolation(where, "keys cannot contain NUL (\\u0000)")
                stack.append((inner, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}[{i}]") for i, inner in enumerate(item))
    raise AssertionError("no NUL found")
