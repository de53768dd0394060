"""The dashboard in headless Chromium: log in, watch a job progress to done live, retry a
failed job. The jobs are driven through the queue core while the page watches."""

from __future__ import annotations

from typing import Any

from shared import queue as core
from shared.db import Database
from tests.integration.api.conftest import READER_SECRET, WRITER_SECRET
from tests.support import wait_until

TIMEOUT_MS = 15_000


async def log_in(page: Any, base: str, secret: str, then: str = "/dashboard") -> None:
    await page.goto(f"{base}{then}")
    assert "/dashboard/login" in page.url
    await page.fill("#key", secret)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{then}", timeout=TIMEOUT_MS)


async def test_log_in_and_watch_a_job_to_done(browser: Any, live_url: str,
                                              db: Database) -> None:
    from playwright.async_api import expect

    page = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
    await page.goto(f"{live_url}/dashboard/login")
    await page.fill("#key", "not-a-key-at-all-00000")
    await page.click("button[type=submit]")
    await expect(page.locator("[role=alert]")).to_contain_text("not a valid API key")
    await log_in(page, live_url, WRITER_SECRET)

    job = await core.send(db, "fresh-data", {"user_role": "r-1"})
    await page.goto(f"{live_url}/dashboard/jobs/{job.id}")
    await expect(page.locator("#live-status")).to_have_class("live-status on",
                                                              timeout=TIMEOUT_MS)
    state = page.locator("[data-job-id] [data-state]").first
    bar = page.locator(f'[data-progress-for="{job.id}"]')
    await expect(state).to_have_text("created")

    await core.fetch(db, {"fresh-data": 1}, "worker-1")
    await expect(state).to_have_text("active", timeout=TIMEOUT_MS)
    for percent, message in [(30, "skills engine"), (70, "hr service")]:
        await core.set_progress(db, job.id, percent, message)
        await expect(bar).to_have_attribute("aria-valuenow", str(percent), timeout=TIMEOUT_MS)
        await expect(bar).to_contain_text(message)
    await core.complete(db, job.id, {"status": "complete"})
    await expect(state).to_have_text("completed", timeout=TIMEOUT_MS)
    await expect(bar).to_have_attribute("aria-valuenow", "100", timeout=TIMEOUT_MS)
    await expect(page.locator("main")).to_contain_text('"status": "complete"')


async def test_retry_a_failed_job(browser: Any, live_url: str, db: Database) -> None:
    from playwright.async_api import expect

    page = await (await browser.new_context()).new_page()
    await log_in(page, live_url, WRITER_SECRET, "/dashboard/jobs?state=failed")
    job = await core.send(db, "collect-analytics", {"user_role": "r-2"})
    await core.fetch(db, {"collect-analytics": 1}, "worker-1")
    await core.fail(db, job.id, "all sources down", "Traceback: ConnectError", retry=False)

    row = page.locator(f'[data-job-id="{job.id}"]')
    await expect(row).to_be_visible(timeout=TIMEOUT_MS)  # appears live, without a reload
    await expect(row).to_contain_text("all sources down")
    await row.locator("summary").click()
    await expect(row.locator("pre.traceback")).to_have_text("Traceback: ConnectError")
    await row.get_by_role("button", name="Retry").click()
    await expect(page.locator(".notice")).to_contain_text(f"Job {job.id} will run again")

    async def waiting() -> bool:
        return (await core.get_job(db, job.id)).state == "created"

    await wait_until(waiting, message="the job waits again")


async def test_a_read_only_key_sees_no_buttons(browser: Any, live_url: str,
                                               db: Database) -> None:
    from playwright.async_api import expect

    job = await core.send(db, "q")
    page = await (await browser.new_context()).new_page()
    await log_in(page, live_url, READER_SECRET, f"/dashboard/jobs/{job.id}")
    await expect(page.locator("h1")).to_contain_text(f"Job #{job.id}")
    await expect(page.get_by_role("button", name="Cancel")).to_have_count(0)


async def test_cancel_waiting_asks_and_does_nothing_when_declined(
    browser: Any, live_url: str, db: Database,
) -> None:
    from playwright.async_api import expect

    await core.send_many(db, [core.JobSpec.of("bulk") for _ in range(3)])
    [active] = await core.fetch(db, {"bulk": 1}, "worker-1")
    page = await (await browser.new_context()).new_page()
    await log_in(page, live_url, WRITER_SECRET)
    asked: list[str] = []

    async def decline(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", decline)
    button = page.locator('tr[data-queue="bulk"]').get_by_role("button", name="Cancel waiting")
    await button.click()
    await wait_until(lambda: asked, message="the confirmation")
    assert asked == ["Cancel all 2 waiting jobs of queue bulk? Active jobs go on."]
    assert (await core.count_jobs(db))["bulk"] == {"created": 2, "active": 1}

    async def accept(dialog: Any) -> None:
        await dialog.accept()

    page.once("dialog", accept)
    await button.click()
    await expect(page.locator(".notice")).to_contain_text(
        "Cancelled 2 waiting jobs of queue bulk", timeout=TIMEOUT_MS)
    assert (await core.get_job(db, active.id)).state == "active"
    assert (await core.count_jobs(db))["bulk"] == {"active": 1, "cancelled": 2}
