"""The dashboard's pages, rendered on the server from the queue core.

Each page is complete without JavaScript; ``static/app.js`` then keeps it live: it listens
to the event streams and re-renders the page's live regions when something changes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from analytics import runs
from api import cursor, rfc3339, stats, wire
from api.analytics import nightly_run
from api.dashboard import charts
from api.dashboard.view import Viewer, id_in_path, page, render
from api.errors import ApiError
from shared import queue as core
from shared.queue import ALL_STATES, FINISHED_STATES, QUEUE_NAME, WAITING_STATES, list_workers

PAGE_SIZE = 50
BATCHES_ON_OVERVIEW = 8
NIGHTS_ON_OVERVIEW = 7
# The ranges the overview's form offers (any whole number of hours up to a month works).
HOUR_CHOICES = (1, 6, 12, 24, 72, 168, 336, core.Window.MAX_HOURS)


def chart_range(request: Request) -> tuple[int, datetime | None]:
    """``hours`` and ``until`` of the overview's charts: a whole number of hours up to a
    month (default a day), and an end (default now) as RFC 3339 or as a browser's
    datetime-local field sends it (``2026-03-01T08:00``, taken as UTC)."""
    raw_hours = request.query_params.get("hours") or str(stats.DEFAULT_HOURS)
    if not raw_hours.isdigit() or not 1 <= int(raw_hours) <= core.Window.MAX_HOURS:
        raise ApiError("invalid_parameter",
                       f"hours must be a whole number from 1 to {core.Window.MAX_HOURS}, "
                       f"got {raw_hours[:20]!r}")
    raw_until = (request.query_params.get("until") or "").strip()
    until = None
    if raw_until:
        until = rfc3339.parse(raw_until)
        if until is None:
            try:
                until = datetime.strptime(raw_until[:16], "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
            except ValueError:
                raise ApiError("invalid_parameter",
                               f"until must be a date and time (UTC), got {raw_until[:40]!r}"
                               ) from None
        if not 1970 <= until.year <= 9999:
            raise ApiError("invalid_parameter", "until must be in the years 1970 to 9999")
    return int(raw_hours), until


async def overview_charts(request: Request) -> dict[str, object]:
    """The overview's charts and the range they cover."""
    db = request.app.state.ctx.db
    hours, until = chart_range(request)
    window = core.Window.last(hours, until)
    params = {"hours": hours, "until": None if until is None else rfc3339_text(until)}
    return {
        "hours": hours, "until": until, "window": window, "hour_choices": HOUR_CHOICES,
        "throughput": charts.throughput(await stats.throughput(db, window),
                                        charts.api_url("/stats/throughput", params)),
        "depth": charts.queue_depth(await stats.queue_depth(db, window),
                                    charts.api_url("/stats/queue-depth", params)),
        "fleet": charts.fleet(await stats.fleet(db, window),
                              charts.api_url("/stats/fleet", params)),
    }


def rfc3339_text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _batches(request: Request, limit: int, before: int | None) -> list[core.Batch]:
    db = request.app.state.ctx.db
    return await core.list_batches(db, before_id=before, limit=limit)


@page
async def overview(request: Request, viewer: Viewer) -> Response:
    db = request.app.state.ctx.db
    policies = await core.list_queues(db)
    counts = await core.count_jobs(db)
    served = await request.app.state.ctx.served.served()
    return render(
        request, viewer, "overview.html",
        queues=[wire.queue(p, counts.get(p.name), p.name in served) for p in policies],
        batches=[wire.batch(b) for b in await _batches(request, BATCHES_ON_OVERVIEW, None)],
        nightly_runs=[nightly_run(r) for r in await runs.list_runs(db, limit=NIGHTS_ON_OVERVIEW)],
        schedules=[wire.schedule(s) for s in await core.list_schedules(db)],
        workers=[wire.worker(w) for w in await list_workers(db)],
        charts=await overview_charts(request),
    )


@page
async def jobs(request: Request, viewer: Viewer) -> Response:
    db = request.app.state.ctx.db
    queue = request.query_params.get("queue") or None
    state = request.query_params.get("state") or None
    if queue is not None and not QUEUE_NAME.fullmatch(queue):
        raise ApiError("invalid_parameter", f"{queue[:40]!r} is not a queue name")
    if state is not None and state not in ALL_STATES:
        raise ApiError("invalid_parameter", f"{state[:40]!r} is not a job state")
    before = cursor.decode(request.query_params.get("cursor") or None)
    found = [] if before == 0 else await core.list_jobs(
        db, queue=queue, states=[state] if state else None, before_id=before, limit=PAGE_SIZE)
    return render(
        request, viewer, "jobs.html",
        jobs=[wire.job(j) for j in found], queue=queue, state=state, states=ALL_STATES,
        queues=[p.name for p in await core.list_queues(db)],
        next_cursor=cursor.next_cursor([j.id for j in found], PAGE_SIZE),
        waiting=WAITING_STATES, finished=FINISHED_STATES,
    )


@page
async def job(request: Request, viewer: Viewer) -> Response:
    job_id = id_in_path(request.path_params["id"], "job")
    found = await core.get_job(request.app.state.ctx.db, job_id)
    return render(request, viewer, "job.html", job=wire.job(found), waiting=WAITING_STATES,
                  finished=FINISHED_STATES)


@page
async def batches(request: Request, viewer: Viewer) -> Response:
    before = cursor.decode(request.query_params.get("cursor") or None)
    found = [] if before == 0 else await _batches(request, PAGE_SIZE, before)
    return render(request, viewer, "batches.html", batches=[wire.batch(b) for b in found],
                  next_cursor=cursor.next_cursor([b.id for b in found], PAGE_SIZE))


@page
async def docs(request: Request, viewer: Viewer) -> Response:
    return render(request, viewer, "docs.html")
