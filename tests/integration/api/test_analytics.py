"""The analytics endpoints: nightly runs with their summaries, a user-role's latest snapshot."""

from __future__ import annotations

import re
from datetime import date

import httpx
from starlette.applications import Starlette

from analytics import fanout, runs, snapshots, user_roles
from analytics.models import Missing
from shared import queue
from shared.db import Database
from tests.integration.api.conftest import READER_SECRET
from tests.integration.api.test_dashboard import logged_in


async def finished_night(db: Database, night: date, partial_ids: set[int]) -> int:
    """A night of five user-roles, run to its end: the listed ones partial, one failed."""
    result = await fanout.fan_out(db, night, chunk=100)
    jobs = await queue.fetch(db, {fanout.COLLECT_QUEUE: 5}, "w")
    for job in jobs[:4]:
        uid = job.data["user_role_id"]
        missing = [Missing("assessment", "timeout after 10 s")] if uid in partial_ids else []
        await snapshots.write(db, uid, night, {"skills-engine": {"score": uid}}, missing, 40,
                              job_id=job.id, batch_id=job.batch_id)
    await queue.complete_many(db, [(j.id, None) for j in jobs[:4]])
    await queue.fail(db, jobs[4].id, "every source failed", retry=False)
    await runs.write_summary(db, night, result.batch_id)
    return result.batch_id


async def test_nightly_runs_latest_first_with_their_summaries(
    reader: httpx.AsyncClient, db: Database,
) -> None:
    await user_roles.seed(db, 5)
    batch_id = await finished_night(db, date(2026, 3, 1), {2, 3})
    await fanout.fan_out(db, date(2026, 3, 2), chunk=100)  # sent, not finished

    page = await reader.get("/nightly-runs", params={"limit": 1})
    assert page.status_code == 200, page.text
    [latest] = page.json()["nightly_runs"]
    assert (latest["night"], latest["state"], latest["sent"], latest["summary"]) == (
        "2026-03-02", "running", 5, None)
    rest = await reader.get("/nightly-runs", params={"cursor": page.json()["next_cursor"]})
    [older] = rest.json()["nightly_runs"]
    assert rest.json()["next_cursor"] is None
    assert (older["night"], older["state"], older["batch_id"]) == (
        "2026-03-01", "finished", batch_id)
    summary = older["summary"]
    assert {k: summary[k] for k in ("total", "complete", "partial", "failed", "cancelled")} == {
        "total": 5, "complete": 2, "partial": 2, "failed": 1, "cancelled": 0}
    assert summary["source_failures"] == {"assessment": 2}
    assert summary["duration_seconds"] >= 0

    one = await reader.get("/nightly-runs/2026-03-01")
    assert one.status_code == 200 and one.json() == older


async def test_a_user_roles_latest_snapshot(reader: httpx.AsyncClient, db: Database) -> None:
    await user_roles.seed(db, 2)
    await snapshots.write(db, 1, date(2026, 3, 1), {"a": {"x": 1}}, [], 12)
    await snapshots.write(db, 1, date(2026, 3, 2), {"a": {"x": 2}},
                          [Missing("b", "circuit open")], 7, job_id=9)
    answer = await reader.get("/user-roles/1/snapshot")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body | {"collected_at": None} == {
        "user_role_id": 1, "day": "2026-03-02", "collected_at": None, "status": "partial",
        "data": {"a": {"x": 2}}, "missing": [{"source": "b", "reason": "circuit open"}],
        "duration_ms": 7, "job_id": 9, "batch_id": None}
    assert body["collected_at"].endswith("Z")
    none = await reader.get("/user-roles/2/snapshot")
    assert (none.status_code, none.json()["code"]) == (404, "not_found")


async def test_bad_nights_cursors_and_keys_are_4xx(
    reader: httpx.AsyncClient, anonymous: httpx.AsyncClient,
) -> None:
    for path, code in [("/nightly-runs/2026-02-30", "not_found"),
                       ("/nightly-runs/yesterday", "invalid_parameter"),
                       ("/nightly-runs/2026-03-01", "not_found"),
                       ("/nightly-runs?cursor=nope", "bad_cursor"),
                       ("/nightly-runs?limit=0", "invalid_parameter"),
                       ("/user-roles/0/snapshot", "invalid_parameter")]:
        answer = await reader.get(path)
        assert 400 <= answer.status_code < 500 and answer.json()["code"] == code, path
    for edge in ("0000000000000000", "7fffffffffffffff"):  # before day 1, after the last
        page = await reader.get("/nightly-runs", params={"cursor": edge})
        assert page.status_code == 200 and page.json()["next_cursor"] is None
    assert (await anonymous.get("/nightly-runs")).status_code == 401
    assert (await anonymous.get("/user-roles/1/snapshot")).status_code == 401


async def test_the_overview_shows_the_nightly_runs(app: Starlette, db: Database) -> None:
    await user_roles.seed(db, 5)
    await finished_night(db, date(2026, 3, 1), {2, 3})
    await fanout.fan_out(db, date(2026, 3, 2), chunk=100)
    async with logged_in(app, READER_SECRET) as client:
        page = (await client.get("/dashboard")).text
    section = page[page.index('<section id="nightly-runs">'):]
    section = section[:section.index("</section>")]
    finished = section[section.index('data-night="2026-03-01"'):]
    finished = finished[:finished.index("</tr>")]
    assert re.findall(r'<td class="num">(\d+)</td>', finished) == ["5", "2", "2", "1"]
    assert "assessment ×2" in finished
    running = section[section.index('data-night="2026-03-02"'):]
    assert ">running<" in running[:running.index("</tr>")]
