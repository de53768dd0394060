"""Metrics scraped from a running API and a running worker, as Prometheus would: the
names and labels that the alert rules, the dashboard and docs/operations.md rely on."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.metrics import build_version
from tests.e2e.processes import Processes
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow

SECRET = "scrape-secret-0123456789abcdefghijklm"
TOKEN = "scraper-token-0123456789abcdefghijklm"
ENV = {"MS8_ENV": "production", "MS8_API_KEYS": f"ops:{SECRET}:read,write",
       "MS8_METRICS_TOKEN": TOKEN, "MS8_POOL_MAX": "4", "MS8_BUILD_COMMIT": "abc123"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    samples: Samples = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def labels_of(samples: Samples, name: str) -> set[frozenset[str]]:
    return {frozenset(k for k, _ in labels) for sample, labels in samples if sample == name}


def lint(text: str) -> None:
    """promtool's own lint of the exposition, when promtool is installed."""
    tool = shutil.which("promtool")
    if tool is not None:
        result = subprocess.run([tool, "check", "metrics"], input=text, text=True,
                                capture_output=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


async def test_a_running_api_and_worker_export_what_the_rules_read(
    processes: Processes,
) -> None:
    api_port, worker_port = free_port(), free_port()
    api = processes.start("api", name="api", PORT=str(api_port), MS8_API_HOST="127.0.0.1",
                          **ENV)
    await api.wait_for_log("api ready", timeout=60)
    # The sources the worker's breakers are for (nothing calls them here).
    worker = processes.start("worker", "--queues", "echo,fail", "--id", "w1",
                             "--metrics-port", str(worker_port), name="worker",
                             MS8_SOURCES="alpha=http://127.0.0.1:9/a,beta=http://127.0.0.1:9/b",
                             **ENV)
    await worker.wait_for_log("worker started")
    base = f"http://127.0.0.1:{api_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10,
                                 headers={"Authorization": f"Bearer {SECRET}"}) as client:
        # A queue no worker runs: its job waits, so depth and age are not zero.
        assert (await client.put("/queues/unserved", json={})).status_code == 201
        assert (await client.post("/jobs", json={"queue": "unserved"})).status_code == 201
        sent = [(await client.post("/jobs", json=body)).json()["id"] for body in (
            {"queue": "echo", "data": {"n": 1}},
            {"queue": "fail", "data": {"message": "no", "permanent": True}})]

        async def ended() -> bool:
            states = [(await client.get(f"/jobs/{i}")).json()["state"] for i in sent]
            return states == ["completed", "failed"]

        await wait_until(ended, timeout=30, message="both jobs ended")
        assert (await client.get("/metrics", headers={"Authorization": ""})).status_code == 401

    async with httpx.AsyncClient(timeout=10) as scraper:
        api_text = (await scraper.get(f"{base}/metrics",
                                      headers={"Authorization": f"Bearer {TOKEN}"})).text

        async def worker_counted() -> str | None:
            text = (await scraper.get(f"http://127.0.0.1:{worker_port}/metrics")).text
            samples, _ = parse(text)
            done = value(samples, "ms8_worker_jobs_finished_total", queue="fail",
                         outcome="failed")
            return text if done == 1 else None

        worker_text = await wait_until(worker_counted, timeout=10, message="worker counted")

    samples, types = parse(api_text)
    assert value(samples, "ms8_queue_finished_jobs_total", queue="echo", state="completed") == 1
    assert value(samples, "ms8_queue_finished_jobs_total", queue="fail", state="failed") == 1
    assert types["ms8_queue_finished_jobs"] == "counter"
    assert value(samples, "ms8_queue_jobs", queue="echo", state="created") == 0
    assert value(samples, "ms8_queue_workers", queue="echo") == 1
    assert value(samples, "ms8_queue_oldest_waiting_seconds", queue="echo") == 0
    assert value(samples, "ms8_queue_jobs", queue="unserved", state="created") == 1
    assert value(samples, "ms8_queue_jobs", queue="unserved", state="active") == 0
    assert value(samples, "ms8_queue_workers", queue="unserved") == 0
    assert value(samples, "ms8_queue_oldest_waiting_seconds", queue="unserved") > 0
    assert labels_of(samples, "ms8_queue_jobs") == {frozenset({"queue", "state"})}
    assert value(samples, "ms8_api_database_up") == 1
    assert value(samples, "ms8_workers_last_seen_seconds") < 120
    assert labels_of(samples, "ms8_queue_last_finished_timestamp_seconds") == {
        frozenset({"queue", "state"})}
    assert labels_of(samples, "ms8_build_info") == {frozenset({"process", "version", "commit"})}
    assert value(samples, "ms8_build_info", process="api", version=build_version(),
                 commit="abc123") == 1
    assert value(samples, "process_resident_memory_bytes") > 0
    lint(api_text)

    samples, types = parse(worker_text)
    assert value(samples, "ms8_worker_jobs_finished_total", queue="echo",
                 outcome="completed") == 1
    assert value(samples, "ms8_worker_job_run_seconds_count", queue="fail",
                 outcome="failed") == 1
    assert types["ms8_source_breaker_state"] == "gauge"
    assert value(samples, "ms8_source_breaker_state", source="alpha") == 0  # closed
    assert value(samples, "ms8_source_breaker_state", source="beta") == 0
    assert labels_of(samples, "ms8_worker_job_run_seconds_count") == {
        frozenset({"queue", "outcome"})}
    assert types["ms8_worker_jobs_finished"] == "counter"
    assert value(samples, "ms8_build_info", process="worker", version=build_version(),
                 commit="abc123") == 1
    assert value(samples, "process_open_fds") > 0
    lint(worker_text)
