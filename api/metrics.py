"""Prometheus metrics of one API process.

- ``ms8_api_requests_total{method,route,status}`` and
  ``ms8_api_request_duration_seconds{method,route}``: labelled by the route *template*
  (``/jobs/{id}``), never the raw path, so the number of series stays bounded. Event
  streams are counted but not timed (their duration is the client's choice).
- ``ms8_queue_jobs{queue,state}``: read at scrape time with ``shared.queue.count_jobs``
  (the hot table plus the history counters: no scan of finished jobs);
  ``ms8_api_database_up`` is 0 when that read failed, and the rest is still served.

Each app has its own registry, so several apps in one process (tests) never collide.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.endpoint import ROUTE_KEY, Call, Endpoint, Reply
from api.errors import translate
from shared import queue as core
from shared.queue.models import ALL_STATES


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ms8_api_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=self.registry)
        self.latency = Histogram(
            "ms8_api_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.queue_jobs = Gauge(
            "ms8_queue_jobs", "Jobs per queue and state, read at scrape time",
            ["queue", "state"], registry=self.registry)
        self.database_up = Gauge(
            "ms8_api_database_up", "1 when the scrape could read the queue depths",
            registry=self.registry)
        self.stream_subscribers = Gauge(
            "ms8_api_event_streams", "Open Server-Sent Event streams",
            registry=self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, streaming = 500, False

        async def watch(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                streaming = any(name == b"content-type" and value.startswith(
                    b"text/event-stream") for name, value in message.get("headers", ()))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route, method = _route_of(scope), scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            if not streaming:
                self.metrics.latency.labels(method, route).observe(
                    time.perf_counter() - started)


def _route_of(scope: Scope) -> str:
    if ROUTE_KEY in scope:
        return str(scope[ROUTE_KEY])
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


async def scrape(call: Call) -> Response:
    metrics = call.ctx.metrics
    try:
        counts = await core.count_jobs(call.ctx.db)
    except Exception as error:
        known = translate(error)
        if known is None or known.code != "database_unavailable":
            raise
        metrics.database_up.set(0)
    else:
        metrics.database_up.set(1)
        metrics.queue_jobs.clear()
        for queue, by_state in counts.items():
            for state in ALL_STATES:
                metrics.queue_jobs.labels(queue, state).set(by_state.get(state, 0))
    metrics.stream_subscribers.set(call.ctx.hub.subscribers)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


ENDPOINTS = [
    Endpoint("GET", "/metrics", scrape, "Prometheus metrics", "metrics", "health",
             {200: Reply("Metrics in the Prometheus text format.", "MetricsText",
                         media_type="text/plain")}),
]
