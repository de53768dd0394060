"""Prometheus metrics of one worker, on a registry of its own (never the global one, so
that two runners in one process, as in tests, do not collide).

Served on ``--metrics-port`` by prometheus_client's HTTP server (a daemon thread):
scraping never touches the event loop nor the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from shared.metrics import add_standard_metrics

_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
_RUN_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class WorkerMetrics:
    def __init__(self, collectors: Iterable[Any] = ()) -> None:
        """``collectors``: more ``prometheus_client`` collectors to serve (of handlers)."""
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        for collector in collectors:
            r.register(collector)
        self.jobs_finished = Counter(
            "ms8_worker_jobs_finished", "Job runs ended in this worker, by queue and outcome "
            "(completed, failed, timeout, cancelled, lost, released; dropped: the database "
            "refused the result), counted once the result is saved", ["queue", "outcome"],
            registry=r)
        self.run_seconds = Histogram(
            "ms8_worker_job_run_seconds", "Handler run time, by queue and outcome as saved: "
            "completed, retry, failed (or lost: the job was no longer this worker's; "
            "dropped: the database refused the result), observed once the result is "
            "stored; cancelled, lost, released (nothing to save) when the handler ends",
            ["queue", "outcome"], buckets=_RUN_BUCKETS, registry=r)
        self.active_jobs = Gauge(
            "ms8_worker_active_jobs", "Jobs held by this worker (running or being reported)",
            ["queue"], registry=r)
        self.fetch_batch = Histogram(
            "ms8_worker_fetch_batch_size", "Jobs claimed per fetch", buckets=_BATCH_BUCKETS,
            registry=r)
        self.fetches = Counter(
            "ms8_worker_fetches", "Fetch statements issued", registry=r)
        self.completion_batch = Histogram(
            "ms8_worker_completion_batch_size", "Results reported per flush",
            buckets=_BATCH_BUCKETS, registry=r)
        self.db_errors = Counter(
            "ms8_worker_database_errors", "Statements that failed to reach the database, "
            "by what the worker was doing", ["operation"], registry=r)
        self.leader = Gauge(
            "ms8_worker_maintenance_leader", "1 while this worker runs the fleet's "
            "maintenance", registry=r)
        self.maintenance_rows = Counter(
            "ms8_worker_maintenance_rows", "Rows handled by maintenance tasks, by task",
            ["task"], registry=r)
        add_standard_metrics(r, "worker")
        self._server: WSGIServer | None = None
        # Labelled children, looked up once: ``labels(...)`` costs a lock and a dict
        # lookup of the label tuple, per job and metric, on the hot path.
        self._finished: dict[tuple[str, str], Any] = {}
        self._run_seconds: dict[tuple[str, str], Any] = {}
        self._active: dict[str, Any] = {}

    def job_finished(self, queue: str, outcome: str) -> None:
        """One run ended (``worker.executor`` outcomes): count it."""
        key = (queue, outcome)
        counter = self._finished.get(key)
        if counter is None:
            counter = self._finished[key] = self.jobs_finished.labels(queue, outcome)
        counter.inc()

    def job_saved(self, queue: str, outcome: str, seconds: float) -> None:
        """A run's result is where it ends up (``outcome``): observe its run time."""
        key = (queue, outcome)
        histogram = self._run_seconds.get(key)
        if histogram is None:
            histogram = self._run_seconds[key] = self.run_seconds.labels(queue, outcome)
        histogram.observe(seconds)

    def active(self, queue: str) -> Any:
        """The active-jobs gauge of one queue."""
        gauge = self._active.get(queue)
        if gauge is None:
            gauge = self._active[queue] = self.active_jobs.labels(queue)
        return gauge

    def serve(self, port: int, addr: str | None = None) -> int:
        """Start the HTTP endpoint; returns the port (useful when ``port`` is 0).

        By default on every interface of both families (``::`` is dual-stack on Linux), so
        a scraper on an IPv6-only private network reaches it too; ``0.0.0.0`` where the
        machine has no IPv6.
        """
        if addr is not None:
            self._server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        else:
            try:
                self._server, _thread = start_http_server(port, addr="::",
                                                          registry=self.registry)
            except OSError:
                self._server, _thread = start_http_server(port, addr="0.0.0.0",
                                                          registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
