"""The dashboard's pages, rendered on the server from the queue core.

Each page is complete without JavaScript; ``static/app.js`` then keeps it live: it listens
to the event streams and re-renders the page's live regions when something changes.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from analytics import runs
from api import cursor, wire
from api.analytics import nightly_run
from api.dashboard.view import Viewer, id_in_path, page, render
from api.errors import ApiError
from shared import queue as core
from shared.queue import ALL_STATES, FINISHED_STATES, QUEUE_NAME, WAITING_STATES, list_workers

PAGE_SIZE = 50
BATCHES_ON_OVERVIEW = 8
NIGHTS_ON_OVERVIEW = 7


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
