"""Server-Sent Events: watch a job, a batch, or every change, without polling.

    GET /jobs/{id}/events      event: job   (the whole job), ..., event: end
    GET /batches/{id}/events   event: batch (the batch and its totals), ..., event: end
    GET /events                event: change (the raw notification), event: resync

A stream subscribes to the process's ``EventHub`` *before* it reads the object, so nothing
that happens after the first read is missed. Each notification about the object is only
a cue: the stream re-reads the object and sends it when it differs from what it sent
last, so events arrive in order, never go backwards, and a burst of notifications costs
one read. A comment line is sent every ``MS8_API_SSE_PING_SECONDS`` (keeping proxies from
closing the connection), and the object is re-read then too, in case a notification was
lost. Job and batch streams end after the event that shows them finished (or ``gone`` when
deleted); ``EventSource`` clients should close on ``end``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api import wire
from api.batches import BATCH_ID
from api.endpoint import Call, Endpoint, Reply
from api.hub import RESYNC, Payload, Subscription
from api.jobs import JOB_ID
from shared import queue as core
from shared.db import is_connection_error
from shared.logging import get_logger

log = get_logger(__name__)
MIN_BATCH_READ_INTERVAL = 0.25
_WAITING_OR_ACTIVE = ("created", "retry", "active")


class EventStream(StreamingResponse):
    """A text/event-stream response that always closes its generator and its subscription
    when the client goes away or the stream ends (even if the stream never started)."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[bytes, None],
                 subscription: Subscription | None = None) -> None:
        super().__init__(events, headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})
        self._events = events
        self._subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._events.aclose()
            if self._subscription is not None:
                self._subscription.close()


def frame(event: str, data: Any, sequence: int | None = None) -> bytes:
    head = f"event: {event}\n" + (f"id: {sequence}\n" if sequence is not None else "")
    return head.encode() + b"data: " + wire.dumps(data) + b"\n\n"


PING = b": ping\n\n"
RETRY = b"retry: 2000\n\n"


async def _watch(
    call: Call, kind: str, wants: Callable[[Payload], bool],
    read: Callable[[], Awaitable[Any]], shape: Callable[[Any], dict[str, Any]],
    done: Callable[[Any], bool], min_interval: float = 0.0,
) -> EventStream:
    """A stream of ``kind`` events for one object (see the module docstring)."""
    ctx = call.ctx
    ping = ctx.settings.sse_ping_seconds
    subscription = ctx.hub.subscribe(wants)
    try:
        first = await read()  # NotFound → 404 before the stream starts
    except BaseException:
        subscription.close()
        raise

    async def events() -> AsyncGenerator[bytes, None]:
        try:
            sent = shape(first)
            sequence = 1
            yield RETRY + frame(kind, sent, sequence)
            current, last_read = first, time.monotonic()
            while not done(current):
                payload = await subscription.next(ping)
                if payload is None:
                    yield PING
                else:
                    subscription.drain()
                    wait = min_interval - (time.monotonic() - last_read)
                    if wait > 0:
                        await asyncio.sleep(wait)
                        subscription.drain()
                try:
                    current, last_read = await read(), time.monotonic()
                except core.NotFound:
                    yield frame("gone", {"id": sent["id"]})
                    return
                except Exception as error:
                    if not is_connection_error(error):
                        raise
                    log.warning("event stream cannot read", kind=kind, error=str(error))
                    continue
                shaped = shape(current)
                if _changed(shaped, sent):
                    sent, sequence = shaped, sequence + 1
                    yield frame(kind, sent, sequence)
            yield frame("end", {"id": sent["id"]})
        finally:
            subscription.close()

    return EventStream(events(), subscription)


def _changed(new: dict[str, Any], old: dict[str, Any]) -> bool:
    # A heartbeat alone is not news (and is not notified either).
    return {k: v for k, v in new.items() if k != "heartbeat_at"} != {
        k: v for k, v in old.items() if k != "heartbeat_at"}


async def job_events(call: Call) -> EventStream:
    db, job_id = call.ctx.db, call.path["id"]
    return await _watch(
        call, "job", lambda p: job_id in p.get("ids", ()),
        lambda: core.get_job(db, job_id), wire.job, lambda job: job.finished)


async def batch_events(call: Call) -> EventStream:
    db, batch_id = call.ctx.db, call.path["id"]

    def wants(payload: Payload) -> bool:
        # Finished children name their batch; other state changes do not, so any of those
        # may change the totals: re-read, at most every MIN_BATCH_READ_INTERVAL seconds.
        return (batch_id in payload.get("batch_ids", ())
                or payload.get("state") in _WAITING_OR_ACTIVE)

    return await _watch(
        call, "batch", wants, lambda: core.get_batch(db, batch_id), wire.batch,
        lambda batch: batch.finished_at is not None, MIN_BATCH_READ_INTERVAL)


async def all_events(call: Call) -> EventStream:
    ping = call.ctx.settings.sse_ping_seconds
    hub = call.ctx.hub

    async def events() -> AsyncGenerator[bytes, None]:
        with hub.subscribe(lambda _payload: True) as subscription:
            yield RETRY
            while True:
                payload = await subscription.next(ping)
                if payload is None:
                    yield PING
                elif payload is RESYNC:
                    yield frame("resync", {})
                else:
                    yield frame("change", payload)

    return EventStream(events())


_STREAM = "text/event-stream"
ENDPOINTS = [
    Endpoint("GET", "/jobs/{id}/events", job_events, "Watch a job (Server-Sent Events)",
             "watchJob", "events",
             {200: Reply("`event: job` with the whole job at once and on every change, then "
                         "`event: end` once it has finished (`event: gone` if deleted).",
                         "EventStreamText", media_type=_STREAM)},
             params=[JOB_ID], errors=("not_found",)),
    Endpoint("GET", "/batches/{id}/events", batch_events,
             "Watch a batch and its totals (Server-Sent Events)", "watchBatch", "events",
             {200: Reply("`event: batch` with the batch at once and whenever its totals "
                         "change, then `event: end` once it has finished.",
                         "EventStreamText", media_type=_STREAM)},
             params=[BATCH_ID], errors=("not_found",)),
    Endpoint("GET", "/events", all_events, "Watch every job change (Server-Sent Events)",
             "watchAll", "events",
             {200: Reply("`event: change` with each notification ({state, ids, batch_ids}, "
                         "{state: progress, ids, progress, message} or {state: waiting, "
                         "queue}); `event: resync` when some may have been missed.",
                         "EventStreamText",
                         media_type=_STREAM)}),
]
