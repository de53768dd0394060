"""The dashboard's charts as served: the overview's per-queue throughput, waiting and
busy charts with their numbers and JSON links, its range form, and the nightly-run page."""

from __future__ import annotations

import re
from datetime import date

from starlette.applications import Starlette

from analytics import fanout, user_roles
from shared import queue
from shared.db import Database
from tests.integration.api.conftest import READER_SECRET
from tests.integration.api.test_analytics import finished_night
from tests.integration.api.test_dashboard import logged_in
from tests.support import register_worker


def between(page: str, start: str, end: str = "</figure>") -> str:
    at = page.index(start)
    return page[at:page.index(end, at)]


async def test_the_overview_charts_each_queues_jobs_with_their_numbers(
    app: Starlette, db: Database,
) -> None:
    await queue.send_many(db, [queue.JobSpec.of("reports") for _ in range(8)])
    jobs = await queue.fetch(db, {"reports": 7}, "w1")  # one left waiting, one left active
    await queue.complete_many(db, [(j.id, None) for j in jobs[:5]])
    await queue.fail(db, jobs[5].id, "boom", retry=False)
    await register_worker(db, "w1", {"reports": 4})
    await queue.record_samples(db, seen_within=60)
    async with logged_in(app, READER_SECRET) as client:
        page = (await client.get("/dashboard")).text
    assert "Last 24 hours" in page
    chart = between(page, '<figure class="chart card" id="chart-tp-reports"')
    assert "<svg" in chart and 'role="img"' in chart and "url(#tp-reports-failed)" in chart
    legend = dict(re.findall(r'data-series="(\w+)">.*?<strong data-value>([^<]+)</strong>',
                             chart))
    assert legend == {"completed": "5", "failed": "1", "cancelled": "0"}
    assert 'href="/stats/throughput?hours=24"' in chart
    waiting = between(page, 'id="chart-depth-waiting"')
    assert "peak reports 1" in waiting
    assert "peak 1 busy of 4 slots (1 worker)" in between(page, 'id="chart-fleet"')


async def test_a_chosen_range_and_a_bad_one(app: Starlette, db: Database) -> None:
    async with logged_in(app, READER_SECRET) as client:
        past = await client.get("/dashboard", params={"hours": "6",
                                                      "until": "2026-03-01T08:00"})
        assert past.status_code == 200
        assert "6 hours to 2026-03-01 08:00:00Z" in past.text
        assert "No job ended in this range." in past.text
        assert 'href="/stats/fleet?hours=6&amp;until=2026-03-01T08%3A00%3A00Z"' in past.text
        for params in ({"hours": "0"}, {"hours": "x"}, {"until": "soon"}):
            bad = await client.get("/dashboard", params=params)
            assert bad.status_code == 400, params


async def test_the_nightly_run_page_after_the_night(app: Starlette, db: Database) -> None:
    await user_roles.seed(db, 5)
    await finished_night(db, date(2026, 3, 1), {2, 3})
    async with logged_in(app, READER_SECRET) as client:
        overview = (await client.get("/dashboard")).text
        assert 'href="/dashboard/nightly-runs/2026-03-01"' in overview
        page = (await client.get("/dashboard/nightly-runs/2026-03-01")).text
    totals = dict(re.findall(r'data-total="(\w+)">([\d,]+)<', page))
    assert totals == {"done": "5", "total": "5", "complete": "2", "partial": "2",
                      "failed": "1", "cancelled": "0"}
    assert '<body data-live="">' in page  # finished: nothing to follow
    sources = between(page, '<section id="sources">', "</section>")
    assert re.search(r'data-source="assessment"><td>assessment</td><td class="num">2</td>',
                     sources)
    assert 'id="chart-night-throughput"' in page and 'id="chart-night-breakers"' in page
    assert "no breaker opened" in page
    assert 'href="/nightly-runs/2026-03-01/progress"' in page


async def test_a_running_night_follows_itself_and_unknown_nights_are_404(
    app: Starlette, db: Database,
) -> None:
    await user_roles.seed(db, 3)
    await fanout.fan_out(db, date(2026, 3, 2), chunk=100)
    async with logged_in(app, READER_SECRET) as client:
        page = (await client.get("/dashboard/nightly-runs/2026-03-02")).text
        assert '<body data-live="every:5">' in page
        assert "Expected end" in page and "not known yet" in page
        for night in ("2026-03-09", "2026-02-30", "yesterday"):
            missing = await client.get(f"/dashboard/nightly-runs/{night}")
            assert missing.status_code == 404, night
