"""The dashboard's user-role view: find it by id, its latest snapshot, and the Fresh data
button that posts (with the CSRF token, write scope) and then shows the job's live page."""

from __future__ import annotations

from datetime import date

from starlette.applications import Starlette

from analytics import fresh, snapshots, user_roles
from analytics.models import Missing
from shared import queue
from shared.db import Database
from tests.integration.api.conftest import READER_SECRET
from tests.integration.api.test_dashboard import csrf_of, logged_in


async def test_fresh_data_posts_then_shows_the_job_page(app: Starlette, db: Database) -> None:
    await user_roles.seed(db, 7)
    await snapshots.write(db, 7, date(2026, 3, 1), {"skills-engine": {"score": "<b>9</b>"}},
                          [Missing("assessment", "timeout after 10 s")], 42)
    async with logged_in(app) as client:
        found = await client.get("/dashboard/user-roles", params={"id": "7"})
        assert (found.status_code, found.headers["location"]) == (303, "/dashboard/user-roles/7")
        page = await client.get("/dashboard/user-roles/7")
        assert page.status_code == 200
        assert "User-role #7" in page.text and "partial" in page.text
        assert "assessment (timeout after 10 s)" in page.text
        assert "&lt;b&gt;9&lt;/b&gt;" in page.text  # data is escaped
        assert 'action="/dashboard/user-roles/7/fresh-data"' in page.text
        token = csrf_of(page.text)

        assert (await client.post("/dashboard/user-roles/7/fresh-data",
                                  data={"csrf": "forged"})).status_code == 403
        assert await queue.list_jobs(db) == []
        posted = await client.post("/dashboard/user-roles/7/fresh-data",
                                   data={"csrf": token, "next": "/dashboard/user-roles/7"})
        assert posted.status_code == 303
        [job] = await queue.list_jobs(db, queue=fresh.FRESH_QUEUE)
        assert posted.headers["location"] == f"/dashboard/jobs/{job.id}"
        shown = await client.get(posted.headers["location"])
        assert f"Fresh data for user-role 7: job {job.id}, collecting now." in shown.text
        assert f'data-live="job:{job.id}"' in shown.text  # the bar follows it live
        assert 'href="/dashboard/user-roles/7"' in shown.text

        again = await client.post("/dashboard/user-roles/7/fresh-data", data={"csrf": token})
        assert again.headers["location"] == f"/dashboard/jobs/{job.id}"
        assert "already on its way" in (await client.get(again.headers["location"])).text
        assert len(await queue.list_jobs(db, queue=fresh.FRESH_QUEUE)) == 1


async def test_unknown_and_bad_user_roles(app: Starlette, db: Database) -> None:
    await user_roles.seed(db, 1)
    async with logged_in(app) as client:
        assert "No snapshot yet" in (await client.get("/dashboard/user-roles/1")).text
        assert (await client.get("/dashboard/user-roles")).status_code == 200
        for raw in ("2", "0", "abc", "١", "²"):
            assert (await client.get(f"/dashboard/user-roles/{raw}")).status_code == 404, raw
        assert (await client.get("/dashboard/user-roles", params={"id": "x"})).status_code == 400
        token = csrf_of((await client.get("/dashboard/user-roles/1")).text)
        for raw in ("2", "²"):
            refused = await client.post(f"/dashboard/user-roles/{raw}/fresh-data",
                                        data={"csrf": token})
            assert refused.status_code == 404, raw
    assert await queue.list_jobs(db) == []


async def test_a_read_only_session_sees_no_button(app: Starlette, db: Database) -> None:
    await user_roles.seed(db, 1)
    async with logged_in(app, READER_SECRET) as client:
        page = await client.get("/dashboard/user-roles/1")
        assert page.status_code == 200 and "Fresh data</button>" not in page.text
        refused = await client.post("/dashboard/user-roles/1/fresh-data",
                                    data={"csrf": csrf_of(page.text)})
        assert refused.status_code == 403
    assert await queue.list_jobs(db) == []
