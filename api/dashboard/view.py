"""What every dashboard page shares: who is looking, the templates, and error pages.

A page needs a session (the login form opens one); with no API key configured (dev) a
session is opened on the first visit without asking. Templates are autoescaped; every
state-changing form carries the session's CSRF token, which ``api/auth.py`` checks.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from api.auth import Principal, session_of
from api.context import ApiContext
from api.errors import ApiError, translate
from api.parse import positive_id
from api.session import COOKIE, Session
from shared.logging import get_logger

log = get_logger(__name__)
HERE = Path(__file__).resolve().parent
NOTICE_COOKIE = "ms8_notice"
# Scripts only from this site (no inline handlers), never framed (no clickjacking of the
# buttons); inline styles stay allowed for the widths of progress bars.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:  # an infinity, as asyncpg reads it: never shift it
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z
                        | orjson.OPT_NAIVE_UTC).decode()


TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True, lstrip_blocks=True,
)
TEMPLATES.filters["when"] = _when
TEMPLATES.filters["pretty"] = _pretty


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    session: Session
    csrf: str
    new_cookie: str | None = None  # a dev session opened by this request

    @property
    def can_write(self) -> bool:
        return "write" in self.principal.scopes


def context_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def set_session_cookie(ctx: ApiContext, response: Response, cookie: str) -> None:
    response.set_cookie(COOKIE, cookie, max_age=ctx.sessions.max_age, httponly=True,
                        samesite="lax", secure=ctx.settings.secure_cookies, path="/")


def viewer_of(request: Request) -> Viewer | None:
    ctx = context_of(request)
    found = session_of(ctx, request)
    if found is not None:
        session, principal = found
        return Viewer(principal, session, ctx.sessions.csrf_token(session))
    if ctx.keys.open:
        cookie = ctx.sessions.issue(None)
        opened = ctx.sessions.verify(cookie)
        assert opened is not None
        principal = Principal("dev", frozenset({"read", "write"}), opened)
        return Viewer(principal, opened, ctx.sessions.csrf_token(opened), cookie)
    return None


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/dashboard/login?next={quote(target)}", status_code=303)


def render(request: Request, viewer: Viewer | None, template: str, status: int = 200,
           **context: Any) -> HTMLResponse:
    notice = request.cookies.get(NOTICE_COOKIE)
    html = TEMPLATES.get_template(template).render(
        request=request, viewer=viewer, notice=notice, path=request.url.path, **context)
    response = HTMLResponse(html, status, headers=SECURITY_HEADERS)
    if notice:
        response.delete_cookie(NOTICE_COOKIE, path="/")
    if viewer is not None and viewer.new_cookie is not None:
        set_session_cookie(context_of(request), response, viewer.new_cookie)
    return response


Page = Callable[[Request, Viewer], Awaitable[Response]]


def page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A dashboard page: needs a session, and shows errors as pages, never tracebacks."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        viewer = viewer_of(request)
        if viewer is None:
            return login_redirect(request)
        try:
            return await handler(request, viewer)
        except Exception as error:
            known = translate(error)
            if known is None:
                log.exception("dashboard page failed", path=request.url.path)
                status, message = 500, "Something went wrong; it is in the server log."
            else:
                status, message = known.status, known.message
            return render(request, viewer, "error.html", status, code=status,
                          message=message)

    return wrapped


def id_in_path(raw: str, what: str) -> int:
    """``raw`` as the id of a ``what`` in a dashboard URL; a malformed one names no page
    (404), as an unknown one does."""
    found = positive_id(raw)
    if found is None:
        raise ApiError("not_found", f"{what} {raw[:40]!r} does not exist")
    return found


def local_path(candidate: str | None, default: str = "/dashboard") -> str:
    """``candidate`` if it is a path of this dashboard (never another site), else default."""
    if (candidate and candidate.startswith("/") and not candidate.startswith("//")
            and "\\" not in candidate and (candidate.startswith("/dashboard")
                                           or candidate.startswith("/docs"))):
        return candidate
    return default
