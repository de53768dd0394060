"""Liveness and readiness.

``/health/live`` says the process answers (no key, no database: a platform restarts the
process only when this fails). ``/health/ready`` says whether it can do its work: the
database answers within a couple of seconds and its schema is the one this code needs.
The listener's state is reported but does not make the API unready (without it, event
streams only lag until their next periodic re-read).
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from api import wire
from api.endpoint import Call, Endpoint, Reply
from shared.migrate import current_version, latest_version

READY_TIMEOUT = 2.0


async def live(_call: Call) -> Response:
    return wire.json_response({"status": "ok"})


async def ready(call: Call) -> Response:
    db, expected = call.ctx.db, latest_version()
    version: int | None = None
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with db.pool.acquire() as conn:
                version = await current_version(conn, db.queries)
        database = "ok"
    except Exception:
        database = "unreachable"
    listening = call.ctx.hub.listener.listening.is_set()
    is_ready = database == "ok" and version == expected
    return wire.json_response({
        "status": "ready" if is_ready else "unavailable",
        "database": database,
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
              503: Reply("Not ready; the report says why.", "Ready")}),
]
