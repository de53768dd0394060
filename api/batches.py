"""Batches over HTTP: create one with its jobs, read it with its totals, list them.

A batch is created, filled and sealed in one transaction (with the ``Idempotency-Key``,
the same transaction as the key), so it is never seen half-filled. Totals of a running
batch are counted live from its children; a finished batch has them frozen.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from api import cursor, idempotent, wire
from api.endpoint import Call, Endpoint, Param, Reply
from api.jobs import job_spec, sent
from api.schemas import ID
from api.served import with_warnings
from shared import queue as core
from shared.conn import Conn

BATCH_ID = Param("id", "path", ID, "the batch's id", required=True)
DEFAULT_PAGE = 20


async def create_batch(call: Call) -> Response:
    body, db = call.body, call.ctx.db
    specs = [job_spec(item, f"jobs[{i}].") for i, item in enumerate(body["jobs"])]
    warnings = await call.ctx.served.warnings(
        [*(spec.queue for spec in specs), body.get("on_complete_queue")])
    created: list[int] = []

    async def work(conn: Conn | None) -> tuple[int, Any]:
        batch_id, results = await core.send_batch(
            db, specs, body.get("name", ""), on_complete_queue=body.get("on_complete_queue"),
            on_complete_data=body.get("on_complete_data"), conn=conn)
        created.append(batch_id)
        return 201, with_warnings({"id": batch_id, "jobs": [sent(r) for r in results]},
                                  warnings)

    response = await idempotent.respond(call, work, lambda reply: f"/batches/{reply['id']}")
    # After the commit: children that ended meanwhile may have been the last ones.
    await core.finish_batches(db, created)
    return response


async def get_batch(call: Call) -> Response:
    return wire.json_response(wire.batch(await core.get_batch(call.ctx.db, call.path["id"])))


async def list_batches(call: Call) -> Response:
    db, q = call.ctx.db, call.query
    limit = q.get("limit", DEFAULT_PAGE)
    before = cursor.decode(q.get("cursor"))
    batches = [] if before == 0 else await core.list_batches(db, before_id=before, limit=limit)
    return wire.json_response({
        "batches": [wire.batch(b) for b in batches],
        "next_cursor": cursor.next_cursor([b.id for b in batches], limit),
    })


ENDPOINTS = [
    Endpoint(
        "POST", "/batches", create_batch, "Create a batch of jobs", "createBatch", "batches",
        {201: Reply("Created; job results in the order of the request.", "BatchCreated",
                    headers={"Location": "the batch's URL"})},
        scope="write", params=[idempotent.PARAM], body="BatchSpec",
        errors=("idempotency_key_reused",),
        description="When its last job has ended, one job is sent to on_complete_queue "
                    "(if given) with on_complete_data. Warnings name the queues (of the "
                    "jobs, or on_complete_queue) that no live worker serves."),
    Endpoint(
        "GET", "/batches", list_batches, "List batches, newest first", "listBatches",
        "batches", {200: Reply("A page of batches with their totals.", "BatchPage")},
        params=[
            Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200},
                  f"page size (default {DEFAULT_PAGE})"),
            Param("cursor", "query", {"type": "string", "pattern": cursor.CURSOR_PATTERN},
                  "next_cursor of the previous page", error_code="bad_cursor"),
        ]),
    Endpoint("GET", "/batches/{id}", get_batch, "Get a batch with its totals", "getBatch",
             "batches", {200: Reply("The batch.", "Batch")}, params=[BATCH_ID],
             errors=("not_found",)),
]
