"""Endpoints declared once: the route, the handler, and everything the OpenAPI document says.

An ``Endpoint`` names its method and path, the scope a caller needs, its parameters and
body (as schemas), and its replies. ``routes()`` turns a list of them into Starlette
routes that, for each request, in this order: answer 405 (with ``Allow``) for a method
the path does not have, authenticate, validate parameters and body against the declared
schemas, call the handler, and translate any error into JSON (``api/errors.py``).
``api/openapi.py`` renders the same declarations, so the document is what is served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api import parse
from api.auth import Principal, authenticate
from api.context import ApiContext
from api.declarations import ROUTE_KEY, Param, Reply
from api.errors import ApiError, error_response, translate
from shared.logging import get_logger

log = get_logger(__name__)


@dataclass
class Call:
    """What a handler gets: the request, the process context, the caller, and its input,
    already validated (``body`` is None when the endpoint takes none)."""

    request: Request
    ctx: ApiContext = field(repr=False)
    principal: Principal
    path: dict[str, Any]
    query: dict[str, Any]
    headers: dict[str, Any]
    body: Any = None
    prepared: Any = None  # what the endpoint's ``fast_body`` made of the body, if anything


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    operation_id: str
    tag: str
    replies: Mapping[int, Reply]
    scope: str | None = "read"  # None: no authentication at all
    params: Sequence[Param] = ()
    body: str | None = None  # component name of the JSON body
    # A shortcut for the body's common shape: (ctx, raw, parsed) → what the handler gets
    # as ``Call.prepared``, or None for the generic validation (see ``parse.body``).
    fast_body: Callable[[ApiContext, bytes, Any], Any] | None = None
    errors: Sequence[str] = ()  # further error codes the handler may answer with
    description: str = ""

    def error_codes(self) -> list[str]:
        """Every error code this endpoint can answer with, for the document."""
        codes = []
        if self.scope is not None:
            codes += ["invalid_host", "unauthorized", "forbidden", "too_many_requests"]
            if self.method != "GET":
                codes.append("csrf_failed")
        codes += [param.error_code for param in self.params]
        if self.body is not None:
            codes += ["malformed_json", "request_timeout", "body_too_large",
                      "unsupported_media_type", "invalid_body", "unknown_field"]
        codes += list(self.errors)
        codes.append("database_unavailable")
        return list(dict.fromkeys(codes))


class _PathDispatch:
    """One Starlette route per path, dispatching on the method itself, so that a 405 lists
    exactly the methods of the path."""

    def __init__(self, path: str, endpoints: list[Endpoint]) -> None:
        self.path = path
        self.by_method = {e.method: e for e in endpoints}
        self.allow = ", ".join(sorted(self.by_method))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[ROUTE_KEY] = self.path
        request = Request(scope, receive)
        endpoint = self.by_method.get(request.method)
        if endpoint is None:
            response = error_response(ApiError(
                "method_not_allowed",
                f"{request.method} is not allowed on {self.path}; allowed: {self.allow}",
                headers={"Allow": self.allow}))
        else:
            response = await run(endpoint, request)
        await response(scope, receive, send)


async def run(endpoint: Endpoint, request: Request) -> Response:
    ctx: ApiContext = request.app.state.ctx
    try:
        principal = authenticate(ctx, request, endpoint.scope)
        call = Call(request=request, ctx=ctx, principal=principal,
                    path=parse.params(ctx, endpoint.params, "path", request.path_params),
                    query=parse.query(ctx, endpoint.params, request),
                    headers=parse.params(ctx, endpoint.params, "header", request.headers))
        if endpoint.body is not None:
            call.body, call.prepared = await parse.body(
                ctx, request, endpoint.body, endpoint.fast_body)
        return await endpoint.handler(call)
    except Exception as error:
        known = translate(error)
        if known is None:
            log.exception("unexpected error", method=request.method, path=request.url.path)
            known = ApiError("internal_error", "unexpected error; see the server log")
        elif known.code == "database_unavailable":
            log.warning("database unavailable", path=request.url.path, error=str(error))
        return error_response(known)


def routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    by_path: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints:
        by_path.setdefault(endpoint.path, []).append(endpoint)
    return [Route(path, _PathDispatch(path, group)) for path, group in by_path.items()]
