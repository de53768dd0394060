"""The dashboard over HTTP: login and sessions, CSRF on every action, escaping, and the
session cookie as a credential of the JSON API (with its CSRF header for changes)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from api.app import create_app
from api.config import ApiSettings
from shared import queue as core
from shared.db import Database
from tests.integration.api.conftest import READER_SECRET, WRITER_SECRET, api_settings
from tests.support import wait_until

HTTPS = "https://dash.test"


def browser(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HTTPS,
                             headers={"Origin": HTTPS})


@contextlib.asynccontextmanager
async def logged_in(app: Starlette, secret: str = WRITER_SECRET
                    ) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app) as client:
        response = await client.post("/dashboard/login",
                                     data={"key": secret, "next": "/dashboard"})
        assert response.status_code == 303, response.text
        yield client


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def test_pages_need_a_session(app: Starlette) -> None:
    async with browser(app) as client:
        for path in ["/dashboard", "/dashboard/jobs?state=failed", "/dashboard/jobs/1", "/docs"]:
            response = await client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/dashboard/login?next=/")
        assert (await client.get("/dashboard/login")).status_code == 200
        assert (await client.get("/dashboard/static/app.js")).status_code == 200


async def test_login(app: Starlette) -> None:
    async with browser(app) as client:
        wrong = await client.post("/dashboard/login", data={"key": "nope", "next": "/dashboard"})
        assert wrong.status_code == 401
        assert "not a valid API key" in wrong.text
        elsewhere = await client.post("/dashboard/login", data={"key": WRITER_SECRET},
                                      headers={"Origin": "https://evil.example"})
        assert elsewhere.status_code == 403
        offsite = await client.post("/dashboard/login", data={
            "key": WRITER_SECRET, "next": "https://evil.example/x"})
        assert offsite.headers["location"] == "/dashboard"
        cookie = offsite.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
        assert WRITER_SECRET not in cookie
        assert (await client.get("/dashboard")).status_code == 200


async def test_pages_render_and_escape(app: Starlette, db: Database) -> None:
    job = await core.send(db, "q", {"html": "<script>alert(1)</script>"})
    await core.fetch(db, {"q": 1}, "w")
    await core.fail(db, job.id, "<img src=x onerror=alert(2)>", "Traceback <b>", retry=False)
    async with logged_in(app) as client:
        overview = await client.get("/dashboard")
        assert overview.status_code == 200
        assert "daily-batch" in overview.text  # the seeded schedule
        assert "frame-ancestors 'none'" in overview.headers["content-security-policy"]
        listed = await client.get("/dashboard/jobs?state=failed")
        assert f'data-job-id="{job.id}"' in listed.text
        detail = await client.get(f"/dashboard/jobs/{job.id}")
        for page in (listed.text, detail.text):
            assert "<script>alert(1)" not in page and "<img src=x" not in page
            assert "&lt;img src=x onerror=alert(2)&gt;" in page
            assert "Traceback &lt;b&gt;" in page
        assert (await client.get("/dashboard/jobs/999999")).status_code == 404
        assert (await client.get("/dashboard/jobs/abc")).status_code == 404
        assert (await client.get("/dashboard/jobs?cursor=zz")).status_code == 400
        assert (await client.get("/dashboard/batches")).status_code == 200
        assert (await client.get("/docs")).status_code == 200


async def test_actions_need_the_csrf_token(app: Starlette, db: Database) -> None:
    job = await core.send(db, "q")
    async with logged_in(app) as client:
        token = csrf_of((await client.get("/dashboard")).text)
        url = f"/dashboard/jobs/{job.id}/cancel"
        assert (await client.post(url, data={"csrf": "forged"})).status_code == 403
        assert (await client.post(url, data={})).status_code == 403
        cross = await client.post(url, data={"csrf": token},
                                  headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
        assert (await core.get_job(db, job.id)).state == "created"

        done = await client.post(url, data={"csrf": token, "next": "/dashboard/jobs"})
        assert done.status_code == 303
        assert done.headers["location"] == "/dashboard/jobs"
        assert (await core.get_job(db, job.id)).state == "cancelled"
        page = await client.get("/dashboard/jobs")
        assert f"Job {job.id} cancelled." in page.text
        retried = await client.post(f"/dashboard/jobs/{job.id}/retry", data={"csrf": token})
        assert retried.status_code == 303
        assert (await core.get_job(db, job.id)).state == "created"
        for action in ("pause", "resume"):
            assert (await client.post(f"/dashboard/queues/q/{action}",
                                      data={"csrf": token})).status_code == 303
        ran = await client.post("/dashboard/schedules/daily-batch/run", data={"csrf": token})
        assert ran.status_code == 303
        assert (await client.post("/dashboard/jobs/1/explode",
                                  data={"csrf": token})).status_code == 404


async def test_cancel_waiting_asks_first_and_leaves_active_jobs(
    app: Starlette, db: Database,
) -> None:
    await core.send_many(db, [core.JobSpec.of("bulk") for _ in range(3)])
    [active] = await core.fetch(db, {"bulk": 1}, "w1")
    async with logged_in(app) as client:
        page = (await client.get("/dashboard")).text
        assert ('data-confirm="Cancel all 2 waiting jobs of queue bulk? Active jobs go on."'
                in page)
        done = await client.post("/dashboard/queues/bulk/cancel-waiting",
                                 data={"csrf": csrf_of(page), "next": "/dashboard"})
        assert (done.status_code, done.headers["location"]) == (303, "/dashboard")
        page = (await client.get("/dashboard")).text
        assert "Cancelled 2 waiting jobs of queue bulk; active jobs go on." in page
        assert "/dashboard/queues/bulk/cancel-waiting" not in page  # nothing waits now
    assert (await core.get_job(db, active.id)).state == "active"
    assert (await core.count_jobs(db))["bulk"] == {"active": 1, "cancelled": 2}
    async with logged_in(app, READER_SECRET) as client:
        await core.send(db, "bulk")
        page = (await client.get("/dashboard")).text
        assert "Cancel waiting" not in page
        refused = await client.post("/dashboard/queues/bulk/cancel-waiting",
                                    data={"csrf": csrf_of(page)})
        assert refused.status_code == 403
    assert (await core.count_jobs(db))["bulk"]["created"] == 1


async def test_read_only_session_cannot_act(app: Starlette, db: Database) -> None:
    job = await core.send(db, "q")
    async with logged_in(app, READER_SECRET) as client:
        page = await client.get(f"/dashboard/jobs/{job.id}")
        assert ">Cancel<" not in page.text
        refused = await client.post(f"/dashboard/jobs/{job.id}/cancel",
                                    data={"csrf": csrf_of(page.text)})
        assert refused.status_code == 403
    assert (await core.get_job(db, job.id)).state == "created"


async def test_session_cookie_on_the_json_api(app: Starlette, db: Database) -> None:
    async with logged_in(app) as client:
        token = csrf_of((await client.get("/dashboard")).text)
        assert (await client.get("/jobs")).status_code == 200
        refused = await client.post("/jobs", json={"queue": "q"})
        assert refused.status_code == 403
        assert refused.json()["code"] == "csrf_failed"
        sent = await client.post("/jobs", json={"queue": "q"}, headers={"X-CSRF-Token": token})
        assert sent.status_code == 201
        client.cookies.set("ms8_session", client.cookies["ms8_session"][:-3] + "abc",
                           domain="dash.test")
        assert (await client.get("/jobs")).status_code == 401


async def test_logout(app: Starlette) -> None:
    async with logged_in(app) as client:
        token = csrf_of((await client.get("/dashboard")).text)
        assert (await client.post("/dashboard/logout", data={"csrf": "x"})).status_code == 403
        cookie = client.cookies["ms8_session"]
        out = await client.post("/dashboard/logout", data={"csrf": token})
        assert out.headers["location"] == "/dashboard/login"
        assert (await client.get("/dashboard")).status_code == 303
        # A copy of the cookie kept from before is worth nothing now.
        client.cookies.set("ms8_session", cookie, domain="dash.test")
        assert (await client.get("/dashboard")).status_code == 303
        assert (await client.get("/jobs")).status_code == 401


async def test_sessions_end_when_the_key_changes(db_url: str) -> None:
    from tests.conftest import test_settings

    first = create_app(test_settings(db_url, MS8_ENV="production"), api_settings(
        MS8_API_SESSION_SECRET="s" * 40))
    async with LifespanManager(first), logged_in(first) as client:
        cookie = client.cookies["ms8_session"]
    changed = create_app(test_settings(db_url, MS8_ENV="production"), ApiSettings.from_env({
        "MS8_API_KEYS": f"writer:{READER_SECRET}:read,write",
        "MS8_API_SESSION_SECRET": "s" * 40}, dev=False))
    async with LifespanManager(changed), browser(changed) as client:
        client.cookies.set("ms8_session", cookie, domain="dash.test")
        assert (await client.get("/dashboard")).status_code == 303


async def test_a_logout_is_refused_by_every_api_process(db_url: str) -> None:
    """Two API processes on one database (replicas behind a load balancer) take the same
    session; logged out on one, it is refused by the other, and by one started later."""
    from tests.conftest import test_settings

    def replica() -> Starlette:
        return create_app(test_settings(db_url, MS8_ENV="production"), api_settings())

    first, second = replica(), replica()
    async with LifespanManager(first), LifespanManager(second):
        async with logged_in(first) as client, browser(second) as elsewhere:
            cookie = client.cookies["ms8_session"]
            elsewhere.cookies.set("ms8_session", cookie, domain="dash.test")
            assert (await elsewhere.get("/jobs")).status_code == 200
            token = csrf_of((await client.get("/dashboard")).text)
            out = await client.post("/dashboard/logout", data={"csrf": token})
            assert out.headers["location"] == "/dashboard/login"
            client.cookies.set("ms8_session", cookie, domain="dash.test")
            assert (await client.get("/jobs")).status_code == 401  # at once where it was

            async def refused_elsewhere() -> bool:
                return (await elsewhere.get("/jobs")).status_code == 401

            await wait_until(refused_elsewhere, timeout=10,
                             message="the other process refusing the logged-out session")
            assert (await elsewhere.get("/dashboard")).status_code == 303
    later = replica()
    async with LifespanManager(later), browser(later) as client:
        client.cookies.set("ms8_session", cookie, domain="dash.test")
        assert (await client.get("/jobs")).status_code == 401


@pytest.mark.slow
async def test_a_logout_the_database_cannot_record_keeps_the_session_to_try_again() -> None:
    from tests.conftest import test_settings
    from tests.e2e.conftest import cluster_of_its_own

    with cluster_of_its_own() as cluster:
        dsn = await asyncio.to_thread(cluster.start)
        app = create_app(test_settings(dsn, MS8_ENV="production", MS8_CONNECT_TIMEOUT="2",
                                       MS8_AUTO_MIGRATE="true"), api_settings())
        async with LifespanManager(app, startup_timeout=60), logged_in(app) as client:
            token = csrf_of((await client.get("/dashboard")).text)
            await asyncio.to_thread(cluster.stop)
            out = await client.post("/dashboard/logout", data={"csrf": token})
            assert out.status_code == 503, out.text
            assert "Not logged out" in out.text
            assert "ms8_session" in client.cookies  # kept: the button still works
            await asyncio.to_thread(cluster.start)
            cookie = client.cookies["ms8_session"]
            out = await client.post("/dashboard/logout", data={"csrf": token})
            assert out.headers["location"] == "/dashboard/login"
            client.cookies.set("ms8_session", cookie, domain="dash.test")
            assert (await client.get("/jobs")).status_code == 401


@pytest_asyncio.fixture
async def dev_app(db_url: str) -> AsyncIterator[Starlette]:
    from tests.conftest import test_settings

    application = create_app(test_settings(db_url), ApiSettings.from_env({}, dev=True))
    async with LifespanManager(application):
        yield application


async def test_dev_mode_dashboard(dev_app: Starlette, db: Database) -> None:
    job = await core.send(db, "q")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=dev_app),
                                 base_url="http://localhost") as client:
        page = await client.get("/dashboard")
        assert page.status_code == 200
        assert "ms8_session" in client.cookies
        assert (await client.get("/dashboard/login")).status_code == 303
        token = csrf_of(page.text)
        assert (await client.post(f"/dashboard/jobs/{job.id}/cancel",
                                  data={"csrf": token})).status_code == 303
    assert (await core.get_job(db, job.id)).state == "cancelled"
