"""``/openapi.json``: the OpenAPI 3.1 document, rendered from the endpoint declarations.

Nothing here is written by hand twice: paths, parameters, bodies and replies come from
the ``Endpoint`` list the app routes, schemas from ``api/schemas.py`` (which also
validates requests), and each error status lists the codes the endpoint can answer with
(from ``api/errors.CODES``). The property-based contract test checks the result against
the running app.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from api import wire
from api.endpoint import Call, Endpoint, Reply
from api.errors import CODES
from api.schemas import ref

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "An API key from MS8_API_KEYS as a bearer token."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "The same key in the X-API-Key header."},
}

DESCRIPTION = """Background jobs on PostgreSQL.

Send jobs, watch them (Server-Sent Events or polling), act on them (cancel, retry,
delete), and manage queues, batches and schedules. Every endpoint but liveness needs an
API key (`Authorization: Bearer <key>` or `X-API-Key`) with the `read` scope for GET and
the `write` scope for the rest. Errors are JSON objects with a stable `code`, a `message`
naming the bad value, and the `field` when there is one.
"""


def _parameter(param: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": param.where,
                           "required": param.required or param.where == "path",
                           "schema": param.schema}
    if param.description:
        out["description"] = param.description
    if param.schema.get("type") == "array":
        out["style"], out["explode"] = "form", True
    return out


def _reply(reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    if reply.schema is not None:
        out["content"] = {reply.media_type: {"schema": ref(reply.schema)}}
    if reply.headers:
        out["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                          for name, text in reply.headers.items()}
    return out


def _errors(endpoint: Endpoint) -> dict[str, dict[str, Any]]:
    by_status: dict[int, list[str]] = {}
    for code in endpoint.error_codes():
        by_status.setdefault(CODES[code][0], []).append(code)
    responses = {}
    for status, codes in sorted(by_status.items()):
        if status in endpoint.replies:
            continue
        lines = "; ".join(f"`{c}`: {CODES[c][1]}" for c in codes)
        schema = {"allOf": [ref("Error"),
                            {"properties": {"code": {"type": "string", "enum": codes}}}]}
        responses[str(status)] = {"description": lines,
                                  "content": {"application/json": {"schema": schema}}}
    return responses


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "security": [] if endpoint.scope is None else [{"bearer": []}, {"apiKey": []}],
    }
    description = endpoint.description
    if endpoint.scope is not None:
        description = (description + "\n\n" if description else "") + (
            f"Needs the `{endpoint.scope}` scope.")
    if description:
        operation["description"] = description
    if endpoint.params:
        operation["parameters"] = [_parameter(p) for p in endpoint.params]
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True, "content": {"application/json": {"schema": ref(endpoint.body)}}}
    responses = {str(status): _reply(reply) for status, reply in sorted(endpoint.replies.items())}
    responses.update(_errors(endpoint))
    operation["responses"] = responses
    return operation


def document(endpoints: Sequence[Endpoint], components: dict[str, Any],
             version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": "ms8-jobs", "version": version, "description": DESCRIPTION},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }


async def serve(call: Call) -> Response:
    return Response(call.request.app.state.openapi_json, media_type="application/json")


ENDPOINTS = [
    Endpoint("GET", "/openapi.json", serve, "This document", "openapi", "health",
             {200: Reply("The OpenAPI 3.1 document.", "OpenApiDocument")}),
]


def encode(doc: dict[str, Any]) -> bytes:
    return wire.dumps(doc)
