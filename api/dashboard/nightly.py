"""The nightly-run page: did last night's batch finish, when, how long it took, how many
user-roles came back partial or failed and because of which source.

While the run goes on the page re-renders every few seconds (``data-live="every:5"``,
not on every job's event: the night ends thousands a minute), showing the progress
against the total, the rate and the expected end; afterwards, the night's summary. The
numbers are those of ``GET /nightly-runs/{night}/progress``, which the page links to.
"""

from __future__ import annotations

import re
from datetime import date

from starlette.requests import Request
from starlette.responses import Response

from analytics.progress import night_progress
from api.analytics import progress
from api.dashboard import charts
from api.dashboard.view import Viewer, page, render
from api.errors import ApiError

LIVE_SECONDS = 5
_NIGHT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def night_in_path(raw: str) -> date:
    """The night a URL names (YYYY-MM-DD); anything else names no page (404)."""
    try:
        if _NIGHT.fullmatch(raw):
            return date.fromisoformat(raw)
    except ValueError:  # shaped like a date but not one (2026-02-30)
        pass
    raise ApiError("not_found", f"nightly run {raw[:40]!r} does not exist")


@page
async def nightly_run(request: Request, viewer: Viewer) -> Response:
    night = night_in_path(request.path_params["night"])
    body = progress(await night_progress(request.app.state.ctx.db, night))
    json_url = f"/nightly-runs/{night.isoformat()}/progress"
    failures = body["source_failures"]
    return render(
        request, viewer, "nightly_run.html", run=body, json_url=json_url,
        live=f"every:{LIVE_SECONDS}" if body["state"] != "finished" else "",
        sources=[(name, n, 100.0 * n / body["total"] if body["total"] else 0.0)
                 for name, n in failures.items()],
        throughput=charts.night_throughput(body, json_url),
        breakers=charts.breaker_openings(body, json_url))
