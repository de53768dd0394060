"""The dashboard's buttons: plain HTML forms posted to ``/dashboard/<kind>/<key>/<action>``.

Each post must come from this site with the session's CSRF token and a key with the
``write`` scope (``api/auth.authenticate``); it then calls the queue core, and redirects
back (303) with a one-line notice of what happened, or on to the page of what it
started (``Done.go_to``: Fresh data shows its job). Logging in and out lives here too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from analytics import fresh
from api.auth import authenticate, check_key
from api.dashboard.view import (
    NOTICE_COOKIE,
    context_of,
    id_in_path,
    local_path,
    login_redirect,
    render,
    set_session_cookie,
    viewer_of,
)
from api.errors import ApiError, translate
from api.hosts import same_origin
from api.session import COOKIE
from shared import queue as core
from shared.db import Database

MAX_FORM_BYTES = 16 * 1024


@dataclass(frozen=True)
class Done:
    """An action's notice and the dashboard page to show next."""

    notice: str
    go_to: str


Action = Callable[[Database, str], Awaitable["str | Done"]]


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form of at most MAX_FORM_BYTES (first value of each field)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ApiError("body_too_large", f"a form is at most {MAX_FORM_BYTES} bytes")
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in parsed.items()}


async def _retry_job(db: Database, key: str) -> str:
    try:
        await core.retry_job(db, id_in_path(key, "job"))
    except core.InvalidState as refused:
        return _sentence(refused)
    return f"Job {key} will run again."


async def _cancel_job(db: Database, key: str) -> str:
    try:
        await core.cancel_job(db, id_in_path(key, "job"))
    except core.InvalidState as refused:
        return _sentence(refused)
    return f"Job {key} cancelled."


def _sentence(refused: core.InvalidState) -> str:
    """The core's explanation of a refusal as a sentence of the page."""
    text = str(refused)
    return f"{text[:1].upper()}{text[1:]}."


async def _pause(db: Database, key: str) -> str:
    await core.pause_queue(db, key)
    return f"Queue {key} paused."


async def _resume(db: Database, key: str) -> str:
    await core.resume_queue(db, key)
    return f"Queue {key} resumed."


async def _cancel_waiting(db: Database, key: str) -> str:
    cancelled = await core.cancel_waiting(db, key)
    return (f"Cancelled {cancelled} waiting job{'' if cancelled == 1 else 's'} of queue "
            f"{key}; active jobs go on.")


async def _run_now(db: Database, key: str) -> str:
    firing = await core.run_now(db, key)
    return f"Schedule {key} ran now: job {firing.job_id}."


async def _enable(db: Database, key: str) -> str:
    await core.enable_schedule(db, key)
    return f"Schedule {key} enabled."


async def _disable(db: Database, key: str) -> str:
    await core.disable_schedule(db, key)
    return f"Schedule {key} disabled."


async def _fresh_data(db: Database, key: str) -> Done:
    user_role_id = id_in_path(key, "user-role")
    sent = await fresh.request(db, user_role_id)
    what = "collecting now" if sent.created else "already on its way"
    return Done(f"Fresh data for user-role {user_role_id}: job {sent.id}, {what}.",
                f"/dashboard/jobs/{sent.id}")


ACTIONS: dict[tuple[str, str], Action] = {
    ("jobs", "retry"): _retry_job, ("jobs", "cancel"): _cancel_job,
    ("queues", "pause"): _pause, ("queues", "resume"): _resume,
    ("queues", "cancel-waiting"): _cancel_waiting,
    ("schedules", "run"): _run_now, ("schedules", "enable"): _enable,
    ("schedules", "disable"): _disable,
    ("user-roles", "fresh-data"): _fresh_data,
}


async def act(request: Request) -> Response:
    ctx = context_of(request)
    kind, key, name = (request.path_params[p] for p in ("kind", "key", "action"))
    action = ACTIONS.get((kind, name))
    viewer = viewer_of(request)
    form: dict[str, str] = {}
    go_to: str | None = None
    try:
        if action is None:
            raise ApiError("not_found", f"no action {name!r} for {kind}")
        form = await read_form(request)
        authenticate(ctx, request, "write", form_token=form.get("csrf"))
        done = await action(ctx.db, key)
        notice, go_to = (done.notice, done.go_to) if isinstance(done, Done) else (done, None)
    except Exception as error:
        known = translate(error)
        if known is None:
            raise
        if known.code == "unauthorized":
            return login_redirect(request)
        if known.code in ("csrf_failed", "forbidden", "not_found", "body_too_large"):
            return render(request, viewer, "error.html", known.status, code=known.status,
                          message=known.message)
        notice = known.message
    response = RedirectResponse(go_to or local_path(form.get("next")), status_code=303)
    response.set_cookie(NOTICE_COOKIE, notice[:300], max_age=60, httponly=True,
                        samesite="lax", secure=ctx.settings.secure_cookies, path="/")
    return response


async def login(request: Request) -> Response:
    ctx = context_of(request)
    target = local_path(request.query_params.get("next"))
    if ctx.keys.open:
        return RedirectResponse(target, status_code=303)
    if request.method == "GET":
        return render(request, None, "login.html", next=target)
    form = await read_form(request)
    target = local_path(form.get("next"))
    if not same_origin(request):
        return render(request, None, "login.html", 403, next=target,
                      error="This form must be sent from this site.")
    try:
        key = check_key(ctx, request, form.get("key", "").strip())
    except ApiError as error:  # throttled
        return render(request, None, "login.html", error.status, next=target,
                      error=error.message)
    if key is None:
        return render(request, None, "login.html", 401, next=target,
                      error="That is not a valid API key.")
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(ctx, response, ctx.sessions.issue(key))
    return response


async def logout(request: Request) -> Response:
    ctx = context_of(request)
    form = await read_form(request)
    viewer = viewer_of(request)
    if viewer is not None and not (same_origin(request) and ctx.sessions.check_csrf(
            viewer.session, form.get("csrf"))):
        return render(request, viewer, "error.html", 403, code=403,
                      message="Log out from the dashboard's own button.")
    if viewer is not None:
        try:
            await ctx.sessions.revoke(ctx.db, viewer.session)
        except Exception as error:
            known = translate(error)
            if known is None or known.code != "database_unavailable":
                raise
            # Revoked nowhere: keep the cookie, so that the button works once it can.
            return render(request, viewer, "error.html", known.status, code=known.status,
                          message="Not logged out: the database cannot be reached right "
                                  "now. Try again in a moment.")
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
