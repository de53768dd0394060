"""Hostile input to the API in-process: bodies built to cost CPU, malformed headers and
ids meant to reach an unexpected error. Each is a 4xx that writes nothing, never a 500."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from structlog.testing import capture_logs

from api.app import create_app
from api.config import ApiSettings
from shared import queue as core
from shared.db import Database
from tests.conftest import test_settings as settings_for
from tests.integration.api.conftest import (
    BASE,
    WRITER,
    WRITER_SECRET,
    api_settings,
    client_for,
)

MIB = 1024 * 1024


@pytest_asyncio.fixture
async def roomy(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A writer on an API that takes bodies of 4 MiB and a bit, as shipped."""
    app = create_app(settings_for(db_url, MS8_ENV="production"),
                     api_settings(MS8_API_MAX_BODY_BYTES=str(4 * MIB + 4096)))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30), \
            client_for(app, WRITER) as client:
        yield client


def _tiny_items(wrap: object) -> bytes:
    """About 4 MiB: two million one-digit items where the job data goes."""
    marker = '"@@"'
    text = orjson.dumps(wrap).decode().replace(marker, "[" + ",".join(["0"] * 1_999_990) + "]")
    assert len(text) < 4 * MIB
    return text.encode()


@pytest.mark.parametrize("path, body", [
    ("/jobs", {"queue": "q", "data": "@@"}),
    ("/jobs/bulk", {"jobs": [{"queue": "q", "data": "@@"}]}),
    ("/batches", {"jobs": [{"queue": "q", "data": "@@"}]}),
    ("/schedules", {"name": "s", "cron": "@daily", "queue": "q", "data": "@@"}),
])
async def test_millions_of_tiny_items_are_refused_before_parsing(
        roomy: httpx.AsyncClient, db: Database, path: str, body: object) -> None:
    response = await roomy.post(path, content=_tiny_items(body),
                                headers={"content-type": "application/json"})
    # Parsed, the data would be refused by its 1 MiB limit as invalid_body (422): a 413
    # naming the values says it was counted, not parsed.
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "body_too_large"
    assert "JSON values" in response.json()["message"]
    assert await core.count_jobs(db) == {}
    assert all(s.name != "s" for s in await core.list_schedules(db))


async def test_many_ordinary_jobs_in_one_body_still_go(roomy: httpx.AsyncClient) -> None:
    jobs = [{"queue": "q", "data": {"user_role": i, "tags": ["a", "b"]}} for i in range(1000)]
    response = await roomy.post("/jobs/bulk", json={"jobs": jobs})
    assert response.status_code == 201, response.text


@pytest_asyncio.fixture
async def dev_app(db_url: str) -> AsyncIterator[Starlette]:
    """No key, as a developer runs it on 127.0.0.1."""
    app = create_app(settings_for(db_url), ApiSettings.from_env({}, dev=True))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        yield app


LOCAL = "http://127.0.0.1:8000"


async def test_an_origin_that_is_no_url_is_another_site(dev_app: Starlette,
                                                        app: Starlette) -> None:
    async with client_for(dev_app, base=LOCAL) as client:
        response = await client.post("/jobs", json={"queue": "q"},
                                     headers={"Origin": "http://["})
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "csrf_failed"
    async with client_for(app, {"Origin": "http://["}) as client:
        login = await client.post("/dashboard/login", data={"key": WRITER_SECRET})
        assert login.status_code == 403, login.text
        logout = await client.post("/dashboard/logout", data={})
        assert logout.status_code in (303, 403), logout.text


async def test_a_csrf_token_with_non_ascii_is_refused(app: Starlette, db: Database) -> None:
    https = "https://api.test"  # the session cookie is Secure
    async with client_for(app, {"Origin": https}, base=https) as client:
        assert (await client.post("/dashboard/login",
                                  data={"key": WRITER_SECRET})).status_code == 303
        by_header = await client.post("/jobs", json={"queue": "q"},
                                      headers={"X-CSRF-Token": ("é" * 32).encode("latin-1")})
        assert by_header.status_code == 403, by_header.text
        assert by_header.json()["code"] == "csrf_failed"
        by_form = await client.post("/dashboard/queues/q/pause", data={"csrf": "ø" * 32})
        assert by_form.status_code == 403, by_form.text
        out = await client.post("/dashboard/logout", data={"csrf": "ü" * 32})
        assert out.status_code == 403, out.text
    assert await core.count_jobs(db) == {}


@pytest.mark.parametrize("path", ["/jobs/%D9%A1", "/jobs/\u0661", "/jobs/%C2%B2",
                                  "/jobs/%EF%BC%91", "/jobs/%D9%A1/cancel", "/jobs/+1",
                                  "/jobs/%2B1/cancel", "/jobs/01"])
async def test_job_ids_are_ascii_digits_only(client: httpx.AsyncClient, db: Database,
                                             path: str) -> None:
    job = await core.send(db, "q")
    assert job.id == 1  # what '١' would be read as
    response = await (client.post(path) if path.endswith("cancel") else client.get(path))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_parameter"
    assert (await core.get_job(db, 1)).state == "created"


@pytest.mark.parametrize("raw", ["%C2%B2", "%D9%A1", "%EF%BC%91", "0", "99999999999999999999"])
async def test_dashboard_job_pages_of_odd_ids_are_404(dev_app: Starlette, db: Database,
                                                      raw: str) -> None:
    await core.send(db, "q")
    async with client_for(dev_app, base=LOCAL) as client:
        page = await client.get(f"/dashboard/jobs/{raw}")
        assert page.status_code == 404, page.text
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert token is not None
        action = await client.post(f"/dashboard/jobs/{raw}/cancel",
                                   data={"csrf": token.group(1)})
        assert action.status_code == 404, action.text
    assert (await core.get_job(db, 1)).state == "created"


async def test_a_declared_length_in_other_digits_is_not_a_500(client: httpx.AsyncClient
                                                               ) -> None:
    response = await client.post("/jobs", content=b'{"queue": "q"}', headers={
        "content-type": "application/json", "content-length": "\u00b2".encode("latin-1")})
    assert response.status_code < 500


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example",
                                  "localhost.evil.example", "[::2]:8000", ""])
async def test_dev_mode_serves_loopback_names_only(dev_app: Starlette, db: Database,
                                                    host: str) -> None:
    """DNS rebinding: a page whose own name resolves to 127.0.0.1 gets nothing."""
    async with client_for(dev_app, base=LOCAL) as client:
        for method, path in [("POST", "/jobs"), ("GET", "/jobs"), ("GET", "/dashboard")]:
            response = await client.request(method, path, json={"queue": "q"},
                                             headers={"Host": host, "Origin": f"http://{host}"})
            assert response.status_code == 400, (method, path, response.text)
            assert response.json()["code"] == "invalid_host"
        assert (await client.get("/health/live", headers={"Host": host})).status_code == 200
    assert await core.count_jobs(db) == {}


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST."])
async def test_dev_mode_answers_on_loopback(dev_app: Starlette, host: str) -> None:
    async with client_for(dev_app, base=LOCAL) as client:
        sent = await client.post("/jobs", json={"queue": "q"}, headers={"Host": host})
        assert sent.status_code == 201, sent.text
        other_port = await client.post("/jobs", json={"queue": "q"}, headers={
            "Host": host, "Origin": "http://localhost:3000"})
        assert other_port.status_code == 403, other_port.text


async def test_allowed_hosts_hold_in_production(db_url: str) -> None:
    app = create_app(settings_for(db_url, MS8_ENV="production"),
                     api_settings(MS8_ALLOWED_HOSTS="jobs.example.com, Admin.Example.com."))
    async with LifespanManager(app), client_for(app, WRITER) as client:
        for host, status in [("jobs.example.com", 200), ("admin.example.com:443", 200),
                             ("api.test", 400), ("127.0.0.1", 400)]:
            response = await client.get("/jobs", headers={"Host": host})
            assert response.status_code == status, (host, response.text)


@pytest.mark.parametrize("path, location", [
    ("/dashboard/", "/dashboard"), ("/jobs/?limit=2", "/jobs?limit=2"), ("/queues/", "/queues"),
    ("//dashboard/", "/dashboard"), ("//evil.example/dashboard/", None)])
async def test_redirects_never_name_the_host(client: httpx.AsyncClient, path: str,
                                             location: str | None) -> None:
    url = httpx.URL(f"{BASE}{path}")  # a path of two slashes stays a path
    response = await client.get(url, headers={"Host": "evil.example"})
    if location is None:
        assert response.status_code == 404, response.text  # no such route: no redirect
    else:
        assert response.status_code == 307, response.text
        assert response.headers["location"] == location


def _client_at(app: Starlette, address: str, headers: dict[str, str] | None = None,
               base: str = BASE) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=base, headers=headers or {})


async def test_failed_authentications_are_logged_and_limited(db_url: str) -> None:
    app = create_app(settings_for(db_url, MS8_ENV="production"),
                     api_settings(MS8_API_AUTH_FAILURES_PER_MINUTE="3"))
    wrong = {"Authorization": "Bearer not-the-key-0123456789abcdefghijkl"}
    async with LifespanManager(app), _client_at(app, "203.0.113.7") as guesser, \
            _client_at(app, "203.0.113.8", WRITER) as neighbour:
        with capture_logs() as logs:
            for _ in range(3):
                assert (await guesser.get("/jobs", headers=wrong)).status_code == 401
            # Throttled: even the right key is refused, so answers tell a guesser nothing.
            for headers in (wrong, WRITER):
                refused = await guesser.get("/jobs", headers=headers)
                assert refused.status_code == 429, refused.text
                assert refused.json()["code"] == "too_many_requests"
                assert int(refused.headers["retry-after"]) >= 1
            login = await guesser.post("/dashboard/login", data={"key": WRITER_SECRET},
                                       headers={"Origin": BASE})
            assert login.status_code == 429, login.text
            assert (await guesser.get("/jobs")).status_code == 401  # no key: not throttled
            assert (await neighbour.get("/jobs")).status_code == 200
        failures = [e for e in logs if e["event"] == "authentication failed"]
        assert [e["client"] for e in failures] == ["203.0.113.7"] * 3
        assert [e["event"] for e in logs].count("authentication throttled") == 1
        assert not any(WRITER_SECRET in str(e) or "not-the-key" in str(e) for e in logs)


async def test_wrong_logins_count_as_failures(db_url: str) -> None:
    app = create_app(settings_for(db_url, MS8_ENV="production"),
                     api_settings(MS8_API_AUTH_FAILURES_PER_MINUTE="2"))
    async with LifespanManager(app), _client_at(app, "203.0.113.9", {"Origin": BASE}) as client:
        for _ in range(2):
            wrong = await client.post("/dashboard/login", data={"key": "guess"})
            assert wrong.status_code == 401
        assert (await client.post("/dashboard/login",
                                  data={"key": WRITER_SECRET})).status_code == 429


@pytest.mark.parametrize("instant", [
    "0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00", "1969-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z", "1000-01-01T00:00:00Z"])
async def test_timestamps_outside_1970_to_9999_are_refused(client: httpx.AsyncClient,
                                                           db: Database, instant: str) -> None:
    for path, body in [("/jobs", {"queue": "q", "start_after": instant}),
                       ("/jobs/bulk", {"jobs": [{"queue": "q", "start_after": instant}]})]:
        response = await client.post(path, json=body)
        assert response.status_code == 422, response.text
        assert "start_after" in response.json()["field"]
        assert "1970 to 9999" in response.json()["message"]
    assert await core.count_jobs(db) == {}


@pytest.mark.parametrize("instant, stored", [
    ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
    ("1970-01-01T05:00:00+14:00", "1969-12-31T15:00:00Z"),
    ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
    ("9999-12-31T23:00:00-05:00", "9999-12-31T23:59:59Z")])  # past 9999 in UTC: its end
async def test_the_edges_of_the_range_stay_finite(client: httpx.AsyncClient, instant: str,
                                                  stored: str) -> None:
    sent = await client.post("/jobs", json={"queue": "q", "start_after": instant})
    assert sent.status_code == 201, sent.text
    got = await client.get(f"/jobs/{sent.json()['id']}")
    assert got.json()["start_after"] == stored


@pytest.mark.parametrize("stored", ["-infinity", "infinity"])
async def test_a_job_stored_at_an_infinity_still_shows(client: httpx.AsyncClient,
                                                       dev_app: Starlette, db: Database,
                                                       stored: str) -> None:
    """Rows written before the range was checked: JSON says UTC, the page renders."""
    job = await core.send(db, "q")
    async with db.pool.acquire() as conn:
        await conn.execute(f"UPDATE {db.schema}.jobs SET start_after = $1::text::timestamptz "
                           "WHERE id = $2", stored, job.id)
    body = (await client.get(f"/jobs/{job.id}")).json()
    assert body["start_after"] in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z")
    async with client_for(dev_app, base=LOCAL) as browser:
        page = await browser.get(f"/dashboard/jobs/{job.id}")
        assert page.status_code == 200, page.text
        listing = await browser.get("/dashboard/jobs")
        assert listing.status_code == 200, listing.text
