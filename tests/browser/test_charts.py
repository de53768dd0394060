"""The morning after a night with a source down, in headless Chromium at phone and desktop
width: real worker processes collect from the stub (assessment down, the other sources
flaky enough that a few user-roles lose every source and fail), then the overview's
charts show the night's throughput and failures, and the nightly-run page the night's
totals, the source that failed most and its breaker openings.

Every number the pages must show is read from the database (history, the night's
summary), not written into the test; the rollups behind the charts must match history
to the job. Screenshots of each page at each width are kept in ``ARTIFACTS``
(``.artifacts/browser/`` unless ``MS8_ARTIFACTS_DIR`` says otherwise; git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from analytics import user_roles
from analytics.fanout import COLLECT_QUEUE
from analytics.settings import DEFAULT_SOURCE_NAMES
from shared import queue
from shared.db import Database
from tests.browser.test_dashboard import TIMEOUT_MS, log_in
from tests.conftest import ROOT, SCHEMA
from tests.e2e.conftest import processes  # noqa: F401  (fixture)
from tests.e2e.processes import Processes
from tests.e2e.test_nightly_batch import run_the_night, start_worker
from tests.integration.api.conftest import READER_SECRET
from tests.stub_server import StubServer, running_stub
from tests.timelines import assert_rollups_match_history

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("MS8_ARTIFACTS_DIR") or ROOT / ".artifacts") / "browser"
USER_ROLES = 600
DOWN = "assessment"
# Each flaky source fails a request in two, and a failed request is retried once: a
# user-role loses a flaky source one time in four, and all three one time in 64 (with
# the source that is down, that is every source: the job fails, with no retry left).
FLAKY = 0.5
WORKER_ENV = {
    "MS8_SAMPLE_SECONDS": "0.5",
    # Only the source that is down opens its breaker, and probes again every second.
    "MS8_SOURCE_BREAKER_FAILURES": f"1000,{DOWN}=3",
    "MS8_SOURCE_BREAKER_COOLDOWN": f"30,{DOWN}=1",
}
WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}


@pytest_asyncio.fixture
async def stub() -> AsyncIterator[StubServer]:
    async with running_stub("--latency-ms", "2") as server:
        yield server


async def ended_in_history(db: Database) -> dict[str, int]:
    rows = await db.pool.fetch(
        f'SELECT state::text AS state, count(*) AS n FROM "{SCHEMA}".history'
        " WHERE queue = $1 GROUP BY 1", COLLECT_QUEUE)
    return {r["state"]: r["n"] for r in rows}


async def fits_the_width(page: Any) -> bool:
    return bool(await page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth + 1"))


async def test_the_morning_after_a_night_with_a_source_down(
    browser: Any, live_url: str, db: Database, processes: Processes,  # noqa: F811
    stub: StubServer,
) -> None:
    from playwright.async_api import expect

    await user_roles.seed(db, USER_ROLES)
    await queue.create_queue(db, COLLECT_QUEUE, retry_limit=0)
    await stub.set(DOWN, mode="down")
    for source in DEFAULT_SOURCE_NAMES:
        if source != DOWN:
            await stub.set(source, failure_rate=FLAKY)
    for i in (1, 2):
        await start_worker(processes, stub, f"w{i}", **WORKER_ENV).wait_for_log(
            "worker started")

    run = await run_the_night(db)

    ended = await ended_in_history(db)
    assert run.failed == ended.get("failed", 0) > 0
    assert run.total == ended["completed"] + ended["failed"] == USER_ROLES
    assert run.source_failures is not None and next(iter(run.source_failures)) == DOWN
    assert await assert_rollups_match_history(db) >= USER_ROLES
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    for name, viewport in WIDTHS.items():
        context = await browser.new_context(viewport=viewport)
        page = await context.new_page()
        await log_in(page, live_url, READER_SECRET)

        chart = page.locator(f"#chart-tp-{COLLECT_QUEUE}")
        await expect(chart.locator("svg.chart-svg")).to_be_visible(timeout=TIMEOUT_MS)
        for state in ("completed", "failed"):
            await expect(chart.locator(f'[data-series="{state}"] [data-value]')).to_have_text(
                f"{ended[state]:,}")
        assert await chart.locator("svg.chart-svg .seg-failed").count() > 0  # drawn, hatched
        box = await chart.bounding_box()
        assert box is not None and box["x"] + box["width"] <= viewport["width"]
        await expect(page.locator("#chart-fleet svg.chart-svg")).to_be_visible()
        assert await fits_the_width(page), f"the overview is wider than a {name}"
        await page.screenshot(path=ARTIFACTS / f"overview-{name}.png", full_page=True)

        await page.click(f'a[href="/dashboard/nightly-runs/{run.night}"]')
        await expect(page.locator("h1")).to_have_text(f"Night {run.night}", timeout=TIMEOUT_MS)
        totals = page.locator("#night-totals")
        for key, value in (("total", run.total), ("done", run.total),
                           ("complete", run.complete), ("partial", run.partial),
                           ("failed", run.failed), ("cancelled", run.cancelled)):
            await expect(totals.locator(f'[data-total="{key}"]')).to_have_text(f"{value:,}")
        first = page.locator("#sources tbody tr").first
        await expect(first.locator("td").first).to_have_text(DOWN)
        await expect(first.locator("td").nth(1)).to_have_text(
            f"{run.source_failures[DOWN]:,}")
        await expect(page.locator("#chart-night-breakers figcaption")).to_contain_text(
            f"{DOWN} ×")
        assert await page.locator("#chart-night-breakers svg .event-strong").count() >= 1
        await expect(page.locator('#chart-night-throughput [data-series="failed"] '
                                  "[data-value]")).to_have_text(f"{run.failed:,}")
        assert await fits_the_width(page), f"the nightly-run page is wider than a {name}"
        await page.screenshot(path=ARTIFACTS / f"nightly-run-{name}.png", full_page=True)
        await context.close()
