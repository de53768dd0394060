"""Jobs over HTTP: send one or many, read, list by queue and state, cancel, retry, delete.

Everything goes through the queue core; this module only maps requests to core calls and
core results (or errors) to responses. A state that does not allow an action is 409 with
the job's current state named, an unknown job 404.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from api import bulk, cursor, idempotent, rfc3339, wire
from api.endpoint import Call, Endpoint, Param, Reply
from api.errors import ApiError
from api.schemas import ID, QUEUE_NAME, STATE
from api.served import with_warnings
from shared import queue as core
from shared.conn import Conn

# start_after arrives as RFC 3339 text, parsed apart; the others go to the core as they are.
OPTIONS = tuple(name for name in core.SEND_OPTIONS if name != "start_after")
JOB_ID = Param("id", "path", ID, "the job's id", required=True)
DEFAULT_PAGE = 50


def send_options(body: dict[str, Any]) -> dict[str, Any]:
    """The core's send options of a validated body (schema ``JobSpec``)."""
    options: dict[str, Any] = {name: body[name] for name in OPTIONS if name in body}
    if "start_after" in body:
        options["start_after"] = rfc3339.parse(body["start_after"])
    return options


def job_spec(body: dict[str, Any], field_prefix: str = "") -> core.JobSpec:
    """A validated body as the core's ``JobSpec``; core errors name the field by its path."""
    try:
        return core.JobSpec.of(body["queue"], body.get("data"), **send_options(body))
    except core.InvalidInput as error:
        field = f"{field_prefix}{error.field}"
        raise ApiError("invalid_body", f"{field}: {error.message}", field=field) from None


def sent(result: core.Sent) -> dict[str, Any]:
    return {"id": result.id, "created": result.created}


async def send_job(call: Call) -> Response:
    # The common shape was checked on the way in; any other body is validated as usual.
    spec = call.prepared if call.prepared is not None else job_spec(call.body)
    warnings = await call.ctx.served.warnings([spec.queue])

    async def work(conn: Conn | None) -> tuple[int, Any]:
        # Outside an idempotency claim, concurrent sends share one commit (and NOTIFY).
        if conn is None:
            result = await call.ctx.sender.send(spec)
        else:
            result = await core.send_spec(call.ctx.db, spec, conn=conn)
        return (201 if result.created else 200), with_warnings(sent(result), warnings)

    return await idempotent.respond(call, work, lambda reply: f"/jobs/{reply['id']}")


async def send_jobs(call: Call) -> Response:
    if isinstance(call.prepared, bulk.Prepared):  # the common shape, checked on the way in
        return await _send_plain(call, call.prepared.jobs)
    specs = [job_spec(item, f"jobs[{i}].") for i, item in enumerate(call.body["jobs"])]
    warnings = await call.ctx.served.warnings(spec.queue for spec in specs)

    async def work(conn: Conn | None) -> tuple[int, Any]:
        results = await core.send_many(call.ctx.db, specs, conn=conn)
        status = 201 if any(r.created for r in results) else 200
        return status, with_warnings({"jobs": [sent(r) for r in results]}, warnings)

    return await idempotent.respond(call, work, lambda _body: None)


_CREATED = '{"id":%d,"created":true}'


async def _send_plain(call: Call, jobs: core.PlainJobs) -> Response:
    """Jobs of their queues' policies: all created, so the reply's list is one format of
    the ids (as orjson writes ``sent``'s dicts, for a fraction of the cost)."""
    warnings = await call.ctx.served.warnings(set(jobs.queues))

    async def work(conn: Conn | None) -> tuple[int, Any]:
        ids = await core.send_plain(call.ctx.db, jobs, conn=conn)
        listed = orjson.Fragment(f"[{','.join([_CREATED] * len(ids)) % tuple(ids)}]")
        return 201, with_warnings({"jobs": listed}, warnings)

    return await idempotent.respond(call, work, lambda _body: None)


async def get_job(call: Call) -> Response:
    return wire.json_response(wire.job(await core.get_job(call.ctx.db, call.path["id"])))


async def list_jobs(call: Call) -> Response:
    q = call.query
    limit = q.get("limit", DEFAULT_PAGE)
    before = cursor.decode(q.get("cursor"))
    if "queue" in q:
        await core.get_queue(call.ctx.db, q["queue"])  # 404 for an unknown queue
    jobs = [] if before == 0 else await core.list_jobs(
        call.ctx.db, queue=q.get("queue"), states=q.get("state") or None, before_id=before,
        limit=limit)
    return wire.json_response({
        "jobs": [wire.job(job) for job in jobs],
        "next_cursor": cursor.next_cursor([job.id for job in jobs], limit),
    })


async def cancel_job(call: Call) -> Response:
    return wire.json_response(wire.job(await core.cancel_job(call.ctx.db, call.path["id"])))


async def retry_job(call: Call) -> Response:
    return wire.json_response(wire.job(await core.retry_job(call.ctx.db, call.path["id"])))


async def delete_job(call: Call) -> Response:
    await core.delete_job(call.ctx.db, call.path["id"])
    return Response(status_code=204)


_JOB = Reply("The job.", "Job")
_NOT_FOUND = ("not_found",)
_CONFLICT = ("not_found", "invalid_state")

ENDPOINTS = [
    Endpoint(
        "POST", "/jobs", send_job, "Send a job", "sendJob", "jobs",
        {201: Reply("Sent.", "SendResult", headers={"Location": "the job's URL"}),
         200: Reply("A job of the queue already holds the singleton key: that job.",
                    "SendResult")},
        scope="write", params=[idempotent.PARAM], body="JobSpec", fast_body=bulk.prepared_one,
        errors=("idempotency_key_reused",),
        description="The queue is created with the default policy on first use. A queue "
                    "that no live worker serves is accepted too, and the reply's warnings "
                    "say so."),
    Endpoint(
        "POST", "/jobs/bulk", send_jobs, "Send many jobs in one statement", "sendJobs",
        "jobs",
        {201: Reply("Sent; results in the order of the request.", "BulkSendResult"),
         200: Reply("Every job was already there (singleton keys).", "BulkSendResult")},
        scope="write", params=[idempotent.PARAM], body="BulkSend", fast_body=bulk.prepared,
        errors=("idempotency_key_reused",),
        description="Warnings name the queues that no live worker serves."),
    Endpoint(
        "GET", "/jobs", list_jobs, "List jobs, newest first", "listJobs", "jobs",
        {200: Reply("A page of jobs.", "JobPage")},
        params=[
            Param("queue", "query", QUEUE_NAME, "only jobs of this queue"),
            Param("state", "query", {"type": "array", "items": STATE},
                  "only jobs in these states (repeat the parameter, or separate by commas)"),
            Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000},
                  f"page size (default {DEFAULT_PAGE})"),
            Param("cursor", "query", {"type": "string", "pattern": cursor.CURSOR_PATTERN},
                  "next_cursor of the previous page", error_code="bad_cursor"),
        ],
        errors=_NOT_FOUND),
    Endpoint("GET", "/jobs/{id}", get_job, "Get a job", "getJob", "jobs",
             {200: _JOB}, params=[JOB_ID], errors=_NOT_FOUND),
    Endpoint("DELETE", "/jobs/{id}", delete_job, "Delete a waiting or finished job",
             "deleteJob", "jobs", {204: Reply("Deleted.", None, media_type="")},
             scope="write", params=[JOB_ID], errors=_CONFLICT),
    Endpoint("POST", "/jobs/{id}/cancel", cancel_job, "Cancel a waiting or active job",
             "cancelJob", "jobs", {200: _JOB}, scope="write", params=[JOB_ID],
             errors=_CONFLICT,
             description="A worker running it hears of it at once and stops the handler."),
    Endpoint("POST", "/jobs/{id}/retry", retry_job,
             "Retry (resume) a failed or cancelled job", "retryJob", "jobs", {200: _JOB},
             scope="write", params=[JOB_ID], errors=_CONFLICT,
             description="The job waits again with a fresh attempt count."),
]
