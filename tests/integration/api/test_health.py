"""Health, metrics and the OpenAPI document; and 503 while the database is gone."""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from api.app import all_endpoints, create_app
from api.errors import CODES
from devstack.embedded import EmbeddedPostgres
from shared import queue as core
from shared.db import Database
from shared.migrations import latest_version
from tests.integration.api.conftest import WRITER, api_settings, client_for
from tests.support import register_worker


async def test_ready_reports(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok", "schema": "current",
                               "schema_version": latest_version(),
                               "expected_schema_version": latest_version(),
                               "listener": "listening"}


async def test_metrics(client: httpx.AsyncClient) -> None:
    job = (await client.post("/jobs", json={"queue": "mail"})).json()
    await client.get(f"/jobs/{job['id']}")
    await client.get("/jobs/999999")
    text = (await client.get("/metrics")).text
    assert 'ms8_api_requests_total{method="GET",route="/jobs/{id}",status="200"} 1.0' in text
    assert 'ms8_api_requests_total{method="GET",route="/jobs/{id}",status="404"} 1.0' in text
    assert 'ms8_api_requests_total{method="POST",route="/jobs",status="201"} 1.0' in text
    assert 'ms8_api_request_duration_seconds_count{method="GET",route="/jobs/{id}"} 2.0' in text
    assert 'ms8_queue_jobs{queue="mail",state="created"} 1.0' in text
    assert 'ms8_queue_jobs{queue="mail",state="active"} 0.0' in text
    assert 'ms8_queue_finished_jobs_total{queue="mail",state="failed"} 0.0' in text
    assert 'ms8_queue_jobs{queue="mail",state="failed"}' not in text  # a counter instead
    assert "ms8_api_database_up 1.0" in text
    assert "/jobs/999999" not in text  # raw paths never become labels
    assert 'ms8_build_info{commit="' in text and 'process="api"' in text
    for family in ("process_resident_memory_bytes", "process_open_fds", "python_info"):
        assert family in text


async def test_queue_metrics_read_the_database(client: httpx.AsyncClient, db: Database) -> None:
    """Depth, age, dead letters, finished counters that do not drop when history is
    pruned, and the fleet: what the alert rules read."""
    await core.create_queue(db, "dead")
    await core.create_queue(db, "work", dead_letter="dead", retry_limit=0)
    for _ in range(3):
        await core.send(db, "work", {}, start_after=datetime.now(UTC) - timedelta(minutes=5))
    jobs = await core.fetch(db, {"work": 2}, "w1")
    await core.complete(db, jobs[0].id)
    await core.fail(db, jobs[1].id, "boom")
    await db.pool.execute("DELETE FROM ms8jobs.history")  # pruned: the counters stay
    await register_worker(db, "w1", {"work": 2})
    await register_worker(db, "gone", {"dead": 1}, seen_seconds_ago=3600)  # not counted
    samples = scrape(await client.get("/metrics"))
    assert samples[("ms8_queue_jobs", ("work", "created"))] == 1
    assert samples[("ms8_queue_jobs", ("dead", "created"))] == 1
    assert samples[("ms8_queue_dead_letters", ("dead",))] == 1
    assert samples[("ms8_queue_dead_letters", ("work",))] == 0
    assert samples[("ms8_queue_finished_jobs_total", ("work", "completed"))] == 1
    assert samples[("ms8_queue_finished_jobs_total", ("work", "failed"))] == 1
    assert samples[("ms8_queue_finished_jobs_total", ("dead", "failed"))] == 0
    assert 280 < samples[("ms8_queue_oldest_waiting_seconds", ("work",))] < 3600
    assert samples[("ms8_queue_oldest_waiting_seconds", ("dead",))] < 60
    assert samples[("ms8_queue_workers", ("work",))] == 1
    assert samples[("ms8_queue_workers", ("dead",))] == 0
    assert samples[("ms8_workers_last_seen_seconds", ())] < 60
    finished_at = samples[("ms8_queue_last_finished_timestamp_seconds", ("work", "failed"))]
    assert abs(finished_at - datetime.now(UTC).timestamp()) < 60
    await db.pool.execute("DELETE FROM ms8jobs.workers")
    samples = scrape(await client.get("/metrics"))
    assert samples[("ms8_workers_last_seen_seconds", ())] == float("inf")


def scrape(response: httpx.Response) -> dict[tuple[str, tuple[str, ...]], float]:
    """{(sample name, label values in order): value} of a Prometheus text answer."""
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sample.labels.values()))] = sample.value
    return samples


async def test_openapi_describes_every_route(client: httpx.AsyncClient, app: Starlette) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    declared = {(e.method.lower(), e.path) for e in all_endpoints()}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == declared
    codes = set()
    for ops in doc["paths"].values():
        for op in ops.values():
            for status, reply in op["responses"].items():
                schema = reply.get("content", {}).get("application/json", {}).get("schema", {})
                for part in schema.get("allOf", []):
                    enum = part.get("properties", {}).get("code", {}).get("enum", [])
                    assert all(CODES[c][0] == int(status) for c in enum)
                    codes.update(enum)
    assert codes == set(CODES) - {"internal_error", "method_not_allowed"}
    assert doc["paths"]["/health/live"]["get"]["security"] == []


@pytest.fixture
def own_server() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own, which it may stop and start."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="ms8-api-test-"))
    if os.geteuid() == 0:
        base.chmod(0o711)
    server = EmbeddedPostgres(base / "pg", settings={"fsync": "off"})
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
async def test_503_while_the_database_is_gone(own_server: EmbeddedPostgres) -> None:
    from tests.conftest import test_settings

    dsn = own_server.start()
    shared = test_settings(dsn, MS8_ENV="production", MS8_CONNECT_TIMEOUT="2",
                           MS8_AUTO_MIGRATE="true")  # a fresh server
    app = create_app(shared, api_settings())
    async with LifespanManager(app, startup_timeout=60), client_for(app, WRITER) as client:
        job = (await client.post("/jobs", json={"queue": "q"})).json()
        own_server.stop()
        gone = await client.get(f"/jobs/{job['id']}")
        assert gone.status_code == 503
        assert gone.json()["code"] == "database_unavailable"
        assert gone.headers["retry-after"]
        assert (await client.post("/jobs", json={"queue": "q"})).status_code == 503
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["database"] == "unreachable"
        async with client_for(app) as platform:  # a health check without a key
            unready = await platform.get("/health/ready")
            assert (unready.status_code, unready.json()) == (503, {"status": "unavailable"})
        assert "ms8_api_database_up 0.0" in (await client.get("/metrics")).text
        assert (await client.get("/health/live")).status_code == 200
        assert own_server.restart() == dsn
        back = await client.get(f"/jobs/{job['id']}")
        assert back.status_code == 200
        assert (await client.get("/health/ready")).status_code == 200
