"""The dashboard's user-roles: find one by id, see its latest snapshot, and collect it now.

The Fresh data button (``actions``: ``/dashboard/user-roles/{id}/fresh-data``) sends the
user-role's fresh-data job, or finds the one already on its way, and shows that job's
page, whose progress bar follows each source live.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from analytics import snapshots, user_roles
from api.dashboard.view import Viewer, id_in_path, page, render
from api.errors import ApiError
from api.parse import positive_id
from shared.queue import NotFound


@page
async def lookup(request: Request, viewer: Viewer) -> Response:
    raw = request.query_params.get("id", "").strip()
    if not raw:
        return render(request, viewer, "user_roles.html")
    user_role_id = positive_id(raw)
    if user_role_id is None:
        raise ApiError("invalid_parameter", f"{raw[:40]!r} is not a user-role id")
    return RedirectResponse(f"/dashboard/user-roles/{user_role_id}", status_code=303)


@page
async def user_role(request: Request, viewer: Viewer) -> Response:
    user_role_id = id_in_path(request.path_params["id"], "user-role")
    db = request.app.state.ctx.db
    found = await user_roles.get(db, user_role_id)
    try:
        latest = await snapshots.latest(db, user_role_id)
    except NotFound:
        latest = None
    return render(request, viewer, "user_role.html", user_role=found, snapshot=latest)
