"""Errors as JSON: ``{"code": "...", "message": "...", "field": "..."}``.

Every error the API answers with has a stable ``code`` (clients branch on it) and a
``message`` that names the bad value; ``field`` names the offending field or parameter
when there is one. Bad input is never a 500 and never shows a traceback; an unreachable
database is a 503. Errors of the queue core are translated here, once.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from api.wire import json_response
from shared.db import is_connection_error
from shared.logging import get_logger
from shared.queue import InvalidInput, InvalidState, NotFound, SingletonTaken

log = get_logger(__name__)

# code → (status, what it means). The OpenAPI document lists these, so keep them stable.
CODES: dict[str, tuple[int, str]] = {
    "malformed_json": (400, "The body is not valid JSON."),
    "invalid_parameter": (400, "A path or query parameter is malformed or out of range."),
    "invalid_host": (400, "The Host header names a host not in MS8_ALLOWED_HOSTS."),
    "bad_cursor": (400, "The cursor was not one this API handed out."),
    "unauthorized": (401, "No API key or session, or an unknown one."),
    "forbidden": (403, "The key lacks the scope this endpoint needs."),
    "csrf_failed": (403, "A browser request without a valid CSRF token or from another site."),
    "not_found": (404, "No such job, queue, batch, schedule or route."),
    "method_not_allowed": (405, "The path exists but not with this method."),
    "request_timeout": (408, "The request body did not arrive within the time allowed."),
    "invalid_state": (409, "The action does not apply to the object in its current state."),
    "body_too_large": (413, "The body is over the size limit."),
    "unsupported_media_type": (415, "The body must be sent as application/json."),
    "invalid_body": (422, "A field of the body is missing, of the wrong type or out of range."),
    "unknown_field": (422, "The body has a field this endpoint does not know."),
    "too_many_requests": (
        429, "Too many failed authentications from this address; retry after Retry-After."),
    "idempotency_key_reused": (
        409, "The Idempotency-Key was used within a day for a different request."),
    "internal_error": (500, "An unexpected error; it is logged on the server."),
    "database_unavailable": (503, "The database cannot be reached right now; retry later."),
}


class ApiError(Exception):
    """An error answered as JSON with a stable code (see ``CODES``)."""

    def __init__(self, code: str, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.status = CODES[code][0]
        self.message = message
        self.field = field
        self.headers = headers

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


def error_response(error: ApiError) -> Response:
    return json_response(error.body(), error.status, headers=error.headers)


def translate(error: BaseException) -> ApiError | None:
    """The API error for an exception of the core or the database; None if unexpected."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, InvalidInput):
        return ApiError("invalid_body", f"{error.field}: {error.message}", field=error.field)
    if isinstance(error, NotFound):
        return ApiError("not_found", str(error))
    if isinstance(error, InvalidState | SingletonTaken):
        return ApiError("invalid_state", str(error))
    if isinstance(error, ClientDisconnect):  # the body never came (see api/protocol.py)
        return ApiError("request_timeout", "the request body did not arrive: the client "
                        "left, or took longer than allowed")
    # InternalClientError: asyncpg's state of a connection the server dropped mid-query.
    if is_connection_error(error) or isinstance(
            error, asyncpg.exceptions.PostgresConnectionError | asyncpg.InternalClientError):
        return ApiError("database_unavailable", "the database cannot be reached; retry later",
                        headers={"Retry-After": "2"})
    return None


async def handle_http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(ApiError("not_found", "no such route"))
    if exc.status_code == 405:
        return error_response(ApiError("method_not_allowed", "method not allowed",
                                       headers=dict(exc.headers or {})))
    code = next((c for c, (s, _) in CODES.items() if s == exc.status_code), "internal_error")
    return error_response(ApiError(code, str(exc.detail)))


async def handle_exception(request: Request, exc: Exception) -> Response:
    """Last resort: known errors keep their meaning, the rest is logged and answered 500."""
    known = translate(exc)
    if known is not None:
        if known.code == "database_unavailable":
            log.warning("database unavailable", path=request.url.path, error=str(exc))
        return error_response(known)
    log.exception("unexpected error", path=request.url.path, method=request.method)
    return error_response(ApiError("internal_error", "unexpected error; see the server log"))
