"""The errors of a ``JobQueue``, the same whichever implementation raised them.

Over HTTP they are built from the API's JSON errors (``{"code", "message", "field"}``):
the stable ``code`` picks the class, ``message`` and ``field`` are kept as sent. The
in-process implementation raises the same classes for the core's errors, so a caller
catches one family either way.
"""

from __future__ import annotations

from typing import Any


class JobQueueError(Exception):
    """Base class: ``code`` is stable (for programs), ``message`` is for people,
    ``field`` names the offending value when there is one, ``status`` is the HTTP status
    (None in-process)."""

    def __init__(self, message: str, *, code: str = "error", field: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message if field is None or field in message
                         else f"{field}: {message}")
        self.message = message
        self.code = code
        self.field = field
        self.status = status


class InvalidInput(JobQueueError, ValueError):
    """A value sent is malformed, out of range or unknown; ``field`` names it."""


class Unauthorized(JobQueueError):
    """No API key, or an unknown one."""


class Forbidden(JobQueueError):
    """The API key lacks the scope the call needs (``write`` to send or cancel)."""


class NotFound(JobQueueError, LookupError):
    """No such job (or it was deleted, or its history pruned)."""


class InvalidState(JobQueueError):
    """The action does not fit the job's state (e.g. cancelling a finished job)."""


class IdempotencyKeyReused(JobQueueError):
    """The idempotency key was used within a day for a different request."""


class Unavailable(JobQueueError):
    """The service or its database cannot be reached right now (after the retries)."""


class ServerError(JobQueueError):
    """An unexpected error on the server; it is logged there."""


BY_CODE: dict[str, type[JobQueueError]] = {
    "malformed_json": InvalidInput, "invalid_parameter": InvalidInput,
    "bad_cursor": InvalidInput, "invalid_body": InvalidInput, "unknown_field": InvalidInput,
    "body_too_large": InvalidInput, "unsupported_media_type": InvalidInput,
    "unauthorized": Unauthorized, "forbidden": Forbidden, "csrf_failed": Forbidden,
    "not_found": NotFound, "invalid_state": InvalidState,
    "idempotency_key_reused": IdempotencyKeyReused,
    "database_unavailable": Unavailable, "internal_error": ServerError,
}
BY_STATUS: dict[int, type[JobQueueError]] = {
    400: InvalidInput, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: InvalidState,
    413: InvalidInput, 415: InvalidInput, 422: InvalidInput, 502: Unavailable,
    503: Unavailable, 504: Unavailable,
}


def from_reply(status: int, body: Any, text: str = "") -> JobQueueError:
    """The error for an HTTP reply that is not a success: by its code when the body is
    one of the API's JSON errors, by its status otherwise (a proxy's HTML page, say)."""
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        code = body["code"]
        message = str(body.get("message") or code)
        field = body.get("field") if isinstance(body.get("field"), str) else None
        kind = BY_CODE.get(code) or BY_STATUS.get(status) or _by_class(status)
        return kind(message, code=code, field=field, status=status)
    kind = BY_STATUS.get(status) or _by_class(status)
    detail = " ".join(text.split())[:200]
    return kind(f"HTTP {status}" + (f": {detail}" if detail else ""), code=f"http_{status}",
                status=status)


def _by_class(status: int) -> type[JobQueueError]:
    return ServerError if status >= 500 else JobQueueError
