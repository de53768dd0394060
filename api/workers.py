"""The worker fleet over HTTP: read-only (workers register themselves)."""

from __future__ import annotations

from starlette.responses import Response

from api import wire
from api.endpoint import Call, Endpoint, Reply
from shared.queue import list_workers


async def workers(call: Call) -> Response:
    fleet = await list_workers(call.ctx.db)
    return wire.json_response({"workers": [wire.worker(w) for w in fleet]})


ENDPOINTS = [
    Endpoint("GET", "/workers", workers, "List the workers of the fleet", "listWorkers",
             "workers", {200: Reply("Registered workers, oldest first, with the number of "
                                    "jobs each holds.", "WorkerList")}),
]
