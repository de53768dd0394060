"""Liveness and readiness.

``/health/live`` says the process answers (no key, no database: a platform restarts the
process only when this fails). ``/health/ready`` (no key either; the report of why only
to a read key) says whether it can do its work: the
database answers within a couple of seconds and this code can run on its schema (the one
it knows, or a newer one whose newer migrations are all ``compatible: previous``, so an
old replica stays ready while a rolling deploy migrates under it).
The listener's state is reported but does not make the API unready (without it, event
streams only lag until their next periodic re-read).
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from api import wire
from api.auth import optional
from api.endpoint import Call, Endpoint, Reply
from shared.migrations import latest_version, schema_status

READY_TIMEOUT = 2.0


async def live(_call: Call) -> Response:
    return wire.json_response({"status": "ok"})


async def ready(call: Call) -> Response:
    """Public (a platform's health check has no key): the status alone; a read key gets
    the report of what is wrong."""
    db, expected = call.ctx.db, latest_version()
    version: int | None = None
    schema = "unknown"
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with db.pool.acquire() as conn:
                found = await schema_status(conn, db.queries)
        database, version, schema = "ok", found.version, found.state
        is_ready = found.runnable
    except Exception:
        database, is_ready = "unreachable", False
    listening = call.ctx.hub.listener.listening.is_set()
    status = "ready" if is_ready else "unavailable"
    if optional(call.ctx, call.request, "read") is None:
        return wire.json_response({"status": status}, 200 if is_ready else 503)
    return wire.json_response({
        "status": status,
        "database": database,
        "schema": schema,
        "schema_version": version,
        "expected_schema_version": expected,
        "listener": "listening" if listening else "reconnecting",
    }, 200 if is_ready else 503)


ENDPOINTS = [
    Endpoint("GET", "/health/live", live, "Liveness: the process answers", "live", "health",
             {200: Reply("Alive.", "Live")}, scope=None),
    Endpoint("GET", "/health/ready", ready, "Readiness: database reachable, schema current",
             "ready", "health",
             {200: Reply("Ready.", "Ready"),
              503: Reply("Not ready; the report (to a read key) says why.", "Ready")},
             scope=None, description=(
                 "Needs no key, and then answers the status alone; with a read key, the "
                 "report: database, schema and listener.")),
]
