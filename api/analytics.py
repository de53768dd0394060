"""The MS8 analytics over HTTP, read-only: the nightly runs and their summaries, and the
latest snapshot of a user-role.

Nights are listed latest first with the API's opaque cursors (a cursor stands for the
night's day number); a night in a path is ``YYYY-MM-DD``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.responses import Response

from analytics import runs, snapshots
from analytics.models import NightlyRun, Snapshot
from api import cursor, wire
from api.endpoint import Call, Endpoint, Param, Reply
from api.schemas import DATE_PATTERN, ID
from shared.queue import NotFound

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
    text = call.path["night"]
    try:
        night = date.fromisoformat(text)
    except ValueError:  # shaped like a date but not one (2026-02-30): no such night
        raise NotFound("nightly run", text) from None
    return wire.json_response(nightly_run(await runs.get(call.ctx.db, night)))


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
        "GET", "/user-roles/{id}/snapshot", latest_snapshot,
        "Get the latest analytics snapshot of a user-role", "getLatestSnapshot", "analytics",
        {200: Reply("The user-role's most recent snapshot.", "Snapshot")},
        params=[USER_ROLE_ID], errors=("not_found",),
        description="A snapshot is partial when some sources did not answer; missing names "
                    "each of them and why."),
]
