"""The MS8 analytics over HTTP, read-only: the nightly runs, their summaries and progress
(with the time line the dashboard's nightly-run page draws), and the latest snapshot of a
user-role.

Nights are listed latest first with the API's opaque cursors (a cursor stands for the
night's day number); a night in a path is ``YYYY-MM-DD``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.responses import Response

from analytics import runs, snapshots
from analytics.fanout import COLLECT_QUEUE
from analytics.models import BreakerOpening, NightlyRun, Snapshot
from analytics.progress import NightProgress, night_progress
from api import cursor, stats, wire
from api.endpoint import Call, Endpoint, Param, Reply
from api.schemas import DATE_PATTERN, ID
from shared.queue import FINISHED_STATES, NotFound

DEFAULT_PAGE = 30
NIGHT = Param("night", "path", {"type": "string", "pattern": DATE_PATTERN},
              "the night, as its date in UTC (YYYY-MM-DD)", required=True)
USER_ROLE_ID = Param("id", "path", ID, "the user-role's id", required=True)


def nightly_run(run: NightlyRun) -> dict[str, Any]:
    summary = None if run.finished_at is None else {
        "total": run.total, "complete": run.complete, "partial": run.partial,
        "failed": run.failed, "cancelled": run.cancelled,
        "duration_seconds": run.duration_seconds, "source_failures": run.source_failures}
    return {"night": run.night, "state": run.state, "fire_time": run.fire_time,
            "job_id": run.job_id, "batch_id": run.batch_id, "sent": run.sent,
            "started_at": run.started_at, "fanned_out_at": run.fanned_out_at,
            "finished_at": run.finished_at, "summary": summary}


def opening(value: BreakerOpening) -> dict[str, Any]:
    return {"source": value.source, "worker_id": value.worker_id,
            "opened_at": value.opened_at, "after_probe": value.after_probe}


def progress(value: NightProgress) -> dict[str, Any]:
    run = value.run
    timeline = stats.throughput_body(value.window, value.minutes)
    ours = [q for q in timeline.pop("queues") if q["queue"] == COLLECT_QUEUE]
    counts = {state: ours[0][state] if ours else [0] * value.window.count
              for state in FINISHED_STATES}
    return {
        "night": run.night, "state": run.state, "total": value.total, "done": value.done,
        "complete": value.complete, "partial": value.partial, "failed": value.failed,
        "cancelled": value.cancelled, "waiting": value.waiting, "active": value.active,
        "percent": round(value.percent, 2),
        "rate_per_minute": None if value.rate_per_minute is None else round(
            value.rate_per_minute, 3),
        "expected_end": value.expected_end, "started_at": run.started_at,
        "fanned_out_at": run.fanned_out_at, "finished_at": run.finished_at,
        "duration_seconds": round(value.duration_seconds, 3),
        "source_failures": value.source_failures,
        "timeline": {**timeline, **counts},
        "breaker_openings": [opening(o) for o in value.openings],
    }


def snapshot(value: Snapshot) -> dict[str, Any]:
    return {"user_role_id": value.user_role_id, "day": value.day,
            "collected_at": value.collected_at, "status": value.status, "data": value.data,
            "missing": [m.as_dict() for m in value.missing], "duration_ms": value.duration_ms,
            "job_id": value.job_id, "batch_id": value.batch_id}


async def list_nightly_runs(call: Call) -> Response:
    limit = call.query.get("limit", DEFAULT_PAGE)
    before = cursor.decode(call.query.get("cursor"))
    if before == 0:  # before the first day there is: nothing
        found = []
    else:  # a cursor past the last day there is stands for "before any night"
        night = None if before is None else date.fromordinal(min(before, date.max.toordinal()))
        found = await runs.list_runs(call.ctx.db, before=night, limit=limit)
    return wire.json_response({
        "nightly_runs": [nightly_run(r) for r in found],
        "next_cursor": cursor.next_cursor([r.night.toordinal() for r in found], limit),
    })


async def get_nightly_run(call: Call) -> Response:
    night = night_in_path(call.path["night"])
    return wire.json_response(nightly_run(await runs.get(call.ctx.db, night)))


def night_in_path(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:  # shaped like a date but not one (2026-02-30): no such night
        raise NotFound("nightly run", text) from None


async def get_night_progress(call: Call) -> Response:
    found = await night_progress(call.ctx.db, night_in_path(call.path["night"]))
    return wire.json_response(progress(found))


async def latest_snapshot(call: Call) -> Response:
    return wire.json_response(snapshot(await snapshots.latest(call.ctx.db, call.path["id"])))


ENDPOINTS = [
    Endpoint(
        "GET", "/nightly-runs", list_nightly_runs, "List the nightly runs, latest night first",
        "listNightlyRuns", "analytics",
        {200: Reply("A page of nightly runs, with their summaries once finished.",
                    "NightlyRunPage")},
        params=[
            Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": runs.MAX_PAGE},
                  f"page size (default {DEFAULT_PAGE})"),
            Param("cursor", "query", {"type": "string", "pattern": cursor.CURSOR_PATTERN},
                  "next_cursor of the previous page", error_code="bad_cursor"),
        ]),
    Endpoint(
        "GET", "/nightly-runs/{night}", get_nightly_run, "Get one night's run and summary",
        "getNightlyRun", "analytics", {200: Reply("The night's run.", "NightlyRun")},
        params=[NIGHT], errors=("not_found",),
        description="The summary is null until the night's last collect-analytics job has "
                    "ended and daily-batch-done has written it."),
    Endpoint(
        "GET", "/nightly-runs/{night}/progress", get_night_progress,
        "Follow one night's run: progress, rate, expected end, time line", "getNightProgress",
        "analytics", {200: Reply("The night's progress.", "NightlyProgress")},
        params=[NIGHT], errors=("not_found",),
        description="While the run goes on: its jobs counted live, the rate of the last "
                    "five minutes and the end it gives. Afterwards: the summary and the "
                    "night's average rate. The time line holds the collect-analytics jobs "
                    "that ended per bucket from the run's start to its end (or now), and "
                    "the sources' breaker openings of that time."),
    Endpoint(
        "GET", "/user-roles/{id}/snapshot", latest_snapshot,
        "Get the latest analytics snapshot of a user-role", "getLatestSnapshot", "analytics",
        {200: Reply("The user-role's most recent snapshot.", "Snapshot")},
        params=[USER_ROLE_ID], errors=("not_found",),
        description="A snapshot is partial when some sources did not answer; missing names "
                    "each of them and why."),
]
