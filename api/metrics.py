"""Prometheus metrics of one API process.

- ``ms8_api_requests_total{method,route,status}`` and
  ``ms8_api_request_duration_seconds{method,route}``: labelled by the route *template*
  (``/jobs/{id}``), never the raw path, so the number of series stays bounded. Event
  streams are counted but not timed (their duration is the client's choice).
- The queues, read from the database at scrape time in one statement
  (``shared.queue.queue_stats``; see sql/queries/stats.sql): ``ms8_queue_jobs{queue,state}``
  (waiting and active), ``ms8_queue_oldest_waiting_seconds``, ``ms8_queue_dead_letters``,
  ``ms8_queue_oldest_heartbeat_seconds``, ``ms8_queue_workers``,
  ``ms8_queue_finished_jobs_total{queue,state}`` (a counter),
  ``ms8_queue_last_finished_timestamp_seconds{queue,state}`` and
  ``ms8_workers_last_seen_seconds``. Every replica reports the same values: aggregate
  with ``max by (...)``, never ``sum``. ``ms8_api_database_up`` is 0 when that read
  failed, and the rest is still served (without the queue series).
- Process, platform and build info (``shared.metrics``).

Each app has its own registry, so several apps in one process (tests) never collide.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.declarations import ROUTE_KEY
from shared import queue as core
from shared.metrics import add_standard_metrics


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
        self.queues = QueueCollector()
        self.registry.register(self.queues)
        self.database_up = Gauge(
            "ms8_api_database_up", "1 when the scrape could read the queue depths",
            registry=self.registry)
        self.stream_subscribers = Gauge(
            "ms8_api_event_streams", "Open Server-Sent Event streams",
            registry=self.registry)
        add_standard_metrics(self.registry, "api")


# stats metric → (exported name, help, kind, labels)
_FAMILIES = {
    "jobs": ("ms8_queue_jobs", "Waiting (created, retry) and active jobs per queue and state",
             "gauge", ("queue", "state")),
    "oldest_waiting_seconds": (
        "ms8_queue_oldest_waiting_seconds",
        "Age of the oldest job that is due and waiting, per queue (0 when none)",
        "gauge", ("queue",)),
    "dead_letters": ("ms8_queue_dead_letters",
                     "Waiting or active copies of failed jobs in a dead-letter queue",
                     "gauge", ("queue",)),
    "oldest_heartbeat_seconds": (
        "ms8_queue_oldest_heartbeat_seconds",
        "Age of the oldest heartbeat of an active job, per queue (0 when none)",
        "gauge", ("queue",)),
    "workers": ("ms8_queue_workers", "Workers that run the queue, seen within "
                "MS8_API_WORKER_SEEN_SECONDS", "gauge", ("queue",)),
    "finished_total": ("ms8_queue_finished_jobs",
                       "Jobs that ended (completed, failed, cancelled), per queue and state",
                       "counter", ("queue", "state")),
    "last_finished_timestamp": (
        "ms8_queue_last_finished_timestamp_seconds",
        "When a job of the queue last ended in this state (Unix time)", "gauge",
        ("queue", "state")),
    "workers_last_seen_seconds": (
        "ms8_workers_last_seen_seconds",
        "Seconds since any worker last touched the registry (+Inf when none is registered)",
        "gauge", ()),
}


class QueueCollector:
    """The queue series of the last successful read, exported as they were read (the
    finished totals as counters, which a gauge set on each scrape could not be)."""

    def __init__(self) -> None:
        self._stats: list[core.Stat] = []

    def update(self, stats: list[core.Stat]) -> None:
        self._stats = stats

    def clear(self) -> None:
        self._stats = []

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for name, help_text, kind, labels in _FAMILIES.values():
            cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            families[name] = cls(name, help_text, labels=list(labels))
        for stat in self._stats:
            spec = _FAMILIES.get(stat.metric)
            if spec is None:
                continue
            values = {"queue": stat.queue, "state": stat.state}
            families[spec[0]].add_metric([values[label] for label in spec[3]], stat.value)
        yield from families.values()


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # Each (method, route, status)'s two series, as labels() returns them: no more
        # entries than there are series.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

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
            key = (method, route, status)
            series = self._series.get(key)
            if series is None:  # labels() locks and checks its labels on every call
                series = self._series[key] = (
                    self.metrics.requests.labels(method, route, str(status)),
                    self.metrics.latency.labels(method, route))
            series[0].inc()
            if not streaming:
                series[1].observe(time.perf_counter() - started)


def _route_of(scope: Scope) -> str:
    if ROUTE_KEY in scope:
        return str(scope[ROUTE_KEY])
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
