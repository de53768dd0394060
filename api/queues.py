"""Queues over HTTP: their policies, job counts per state and whether a live worker
serves them, pause/resume, redrive, and cancelling every waiting job of a queue at once.

Counts come from ``shared.queue.count_jobs`` (the hot table plus the history counters the
triggers keep), so listing queues never scans finished jobs.
"""

from __future__ import annotations

from starlette.responses import Response

from api import wire
from api.endpoint import Call, Endpoint, Param, Reply
from api.schemas import QUEUE_NAME
from shared import queue as core

NAME = Param("name", "path", QUEUE_NAME, "the queue's name", required=True)


async def _one(call: Call, policy: core.QueuePolicy, status: int = 200) -> Response:
    counts = await core.count_jobs(call.ctx.db)
    served = await call.ctx.served.served()
    return wire.json_response(
        wire.queue(policy, counts.get(policy.name), policy.name in served), status)


async def list_queues(call: Call) -> Response:
    db = call.ctx.db
    policies = await core.list_queues(db)
    counts = await core.count_jobs(db)
    served = await call.ctx.served.served()
    return wire.json_response(
        {"queues": [wire.queue(p, counts.get(p.name), p.name in served) for p in policies]})


async def get_queue(call: Call) -> Response:
    return await _one(call, await core.get_queue(call.ctx.db, call.path["name"]))


async def put_queue(call: Call) -> Response:
    db, name = call.ctx.db, call.path["name"]
    try:
        await core.get_queue(db, name)
        existed = True
    except core.NotFound:
        existed = False
    policy = await core.create_queue(db, name, **call.body)
    return await _one(call, policy, 200 if existed else 201)


async def pause_queue(call: Call) -> Response:
    return await _one(call, await core.pause_queue(call.ctx.db, call.path["name"]))


async def resume_queue(call: Call) -> Response:
    return await _one(call, await core.resume_queue(call.ctx.db, call.path["name"]))


async def redrive(call: Call) -> Response:
    ids = await core.redrive(call.ctx.db, call.path["name"], call.query.get("limit", 1000))
    return wire.json_response({"ids": ids})


async def cancel_waiting(call: Call) -> Response:
    cancelled = await core.cancel_waiting(call.ctx.db, call.path["name"])
    return wire.json_response({"cancelled": cancelled})


_QUEUE = Reply("The queue, with its job counts.", "Queue")
_NOT_FOUND = ("not_found",)

ENDPOINTS = [
    Endpoint("GET", "/queues", list_queues, "List queues with their counts per state",
             "listQueues", "queues", {200: Reply("Every queue.", "QueueList")}),
    Endpoint("GET", "/queues/{name}", get_queue, "Get a queue's policy and counts",
             "getQueue", "queues", {200: _QUEUE}, params=[NAME], errors=_NOT_FOUND),
    Endpoint("PUT", "/queues/{name}", put_queue, "Create a queue or change its policy",
             "putQueue", "queues",
             {200: Reply("Changed.", "Queue"), 201: Reply("Created.", "Queue")},
             scope="write", params=[NAME], body="QueuePolicy"),
    Endpoint("POST", "/queues/{name}/pause", pause_queue, "Pause a queue", "pauseQueue",
             "queues", {200: _QUEUE}, scope="write", params=[NAME], errors=_NOT_FOUND,
             description="Workers stop fetching its jobs; running ones go on."),
    Endpoint("POST", "/queues/{name}/resume", resume_queue, "Resume a paused queue",
             "resumeQueue", "queues", {200: _QUEUE}, scope="write", params=[NAME],
             errors=_NOT_FOUND),
    Endpoint("POST", "/queues/{name}/redrive", redrive,
             "Send a dead-letter queue's jobs back to where they failed", "redriveQueue",
             "queues", {200: Reply("The ids of the jobs sent back.", "RedriveResult")},
             scope="write",
             params=[NAME, Param("limit", "query",
                                 {"type": "integer", "minimum": 1, "maximum": 100_000},
                                 "at most this many (default 1000)")],
             errors=_NOT_FOUND),
    Endpoint("POST", "/queues/{name}/cancel-waiting", cancel_waiting,
             "Cancel every waiting job of a queue", "cancelWaitingJobs", "queues",
             {200: Reply("How many jobs were cancelled.", "CancelWaitingResult")},
             scope="write", params=[NAME], errors=_NOT_FOUND,
             description="Created, retrying and delayed jobs end as cancelled, as with a "
                         "cancel of each; active jobs go on. Jobs sent meanwhile are left "
                         "alone."),
]
