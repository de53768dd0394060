"""Strict reading of requests: the body (size limit, media type, JSON) and parameters.

Nothing is read leniently: a body over the limit is refused while it streams in (413),
so is one of more JSON values than allowed, before it is parsed (413),
a body that is not ``application/json`` is 415, malformed JSON is 400, and a value that
does not match its declared schema is 400 (parameters) or 422 (body) with the field
named. Handlers only ever see validated values, so nothing is written on bad input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from starlette.requests import Request

from api.context import ApiContext
from api.declarations import Param
from api.errors import ApiError
from api.schemas import ref
from api.validator import SchemaViolation

# ASCII digits only: Python's \d and int() also take '١' and '²', so /jobs/١ was job 1.
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DIGITS = re.compile(r"0|[1-9][0-9]{0,19}")
_ID = re.compile(r"[0-9]{1,19}")


async def body(ctx: ApiContext, request: Request, component: str,
               fast: Callable[[ApiContext, bytes, Any], Any] | None = None,
               ) -> tuple[Any, Any]:
    """The body's validated JSON value, and what ``fast(ctx, raw, value)`` made of it
    (None when there is no ``fast`` or it declined). ``fast`` is a shortcut for a body's
    common shape: when it accepts a body, validation would have accepted it unchanged,
    so it is skipped and the parsed value is the validated one."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/")
                                            and media.endswith("+json")):
        raise ApiError("unsupported_media_type",
                       f"send the body as application/json (got {media or 'no content type'})")
    limit = ctx.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and _ID.fullmatch(declared) and int(declared) > limit:
        raise ApiError("body_too_large",
                       f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError("body_too_large", f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError("malformed_json", "the body is empty; send a JSON object")
    _check_values(ctx, raw)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ApiError("malformed_json", f"the body is not valid JSON: {error}") from None
    if fast is not None and (prepared := fast(ctx, raw, value)) is not None:
        return value, prepared
    try:
        return ctx.validator.validate(ref(component), value, "body"), None
    except SchemaViolation as violation:
        raise ApiError("unknown_field" if violation.unknown else "invalid_body",
                       f"{violation.field}: {violation.message}",
                       field=violation.field) from None


def _check_values(ctx: ApiContext, raw: bytes) -> None:
    """Refuse a body of too many JSON values before parsing it: parsing and walking two
    million tiny items costs seconds of the event loop even within the byte limit. Every
    value but the first follows a comma or opens a container, so counting those bytes
    (inside strings too, which only over-counts) bounds the values, at C speed."""
    limit = ctx.settings.max_json_values
    count = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    if count > limit:
        raise ApiError("body_too_large",
                       f"the body holds about {count} JSON values; the limit is {limit} "
                       "(commas and brackets counted, also inside strings)")


def positive_id(raw: str) -> int | None:
    """``raw`` as a database id (1 to 2**63-1, ASCII digits only), or None."""
    if not _ID.fullmatch(raw):
        return None
    value = int(raw)
    return value if 0 < value < 2**63 else None


def params(ctx: ApiContext, declared: Sequence[Param], where: str,
           source: Mapping[str, str]) -> dict[str, Any]:
    """Validated path or header parameters (header names are matched case-insensitively)."""
    values: dict[str, Any] = {}
    for param in declared:
        if param.where != where:
            continue
        raw = source.get(param.name.lower() if where == "header" else param.name)
        if raw is None:
            if param.required:
                raise ApiError("invalid_parameter", f"{param.name} is required",
                               field=param.name)
            continue
        values[param.name] = _value(ctx, param, raw)
    return values


def query(ctx: ApiContext, declared: Sequence[Param], request: Request) -> dict[str, Any]:
    """Validated query parameters; an array parameter may repeat or be comma-separated."""
    values: dict[str, Any] = {}
    for param in declared:
        if param.where != "query":
            continue
        given = request.query_params.getlist(param.name)
        if not given:
            if param.required:
                raise ApiError("invalid_parameter", f"{param.name} is required",
                               field=param.name)
            continue
        if param.schema.get("type") == "array":
            items = [part for raw in given for part in raw.split(",") if part != ""]
            item_param = _item(param)
            values[param.name] = [_value(ctx, item_param, item) for item in items]
            _validate(ctx, param, values[param.name])
        else:
            if len(given) > 1:
                raise ApiError("invalid_parameter", f"{param.name} is given more than once",
                               field=param.name)
            values[param.name] = _value(ctx, param, given[0])
    return values


def _item(param: Param) -> Param:
    return Param(param.name, param.where, param.schema.get("items", {}), param.description,
                 error_code=param.error_code)


def _value(ctx: ApiContext, param: Param, raw: str) -> Any:
    kind = param.schema.get("type")
    value: Any = raw
    if kind == "integer":
        # A path names one resource by one spelling: no sign, no leading zero (/jobs/+1
        # and /jobs/01 are not /jobs/1).
        pattern = _DIGITS if param.where == "path" else _INTEGER
        if not pattern.fullmatch(raw):
            raise ApiError(param.error_code,
                           f"{param.name} must be a whole number, got {raw[:40]!r}",
                           field=param.name)
        value = int(raw)
    elif kind == "number":
        if not _NUMBER.fullmatch(raw):
            raise ApiError(param.error_code,
                           f"{param.name} must be a number, got {raw[:40]!r}", field=param.name)
        value = float(raw)
    elif kind == "boolean":
        if raw not in ("true", "false"):
            raise ApiError(param.error_code,
                           f"{param.name} must be true or false, got {raw[:40]!r}",
                           field=param.name)
        value = raw == "true"
    return _validate(ctx, param, value)


def _validate(ctx: ApiContext, param: Param, value: Any) -> Any:
    try:
        return ctx.validator.validate(param.schema, value, param.name)
    except SchemaViolation as violation:
        raise ApiError(param.error_code, f"{violation.field}: {violation.message}",
                       field=param.name) from None
