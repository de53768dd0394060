"""Sends to a queue that no live worker serves: accepted, and the reply and the queue
listings say so."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from api.served import ServedQueues
from shared import queue as core
from shared.db import Database
from tests.integration.api.test_dashboard import logged_in
from tests.support import register_worker


async def workers(db: Database) -> None:
    """One live worker for "mail", one long gone for "imports" (registered before the
    test's first request, which is when the API reads the registry)."""
    await register_worker(db, "live", {"mail": 2})
    await register_worker(db, "gone", {"imports": 2}, seen_seconds_ago=3600)


async def test_a_send_to_an_unserved_queue_is_accepted_and_says_so(
    client: httpx.AsyncClient, db: Database,
) -> None:
    await workers(db)
    served = await client.post("/jobs", json={"queue": "mail"})
    assert served.status_code == 201 and "warnings" not in served.json()
    for name in ("mial", "imports"):
        response = await client.post("/jobs", json={"queue": name})
        assert response.status_code == 201, response.text
        [warning] = response.json()["warnings"]
        assert (warning["code"], warning["queue"]) == ("queue_not_served", name)
        assert f"no live worker serves queue {name!r}" in warning["message"]
        job = await core.get_job(db, response.json()["id"])
        assert (job.queue, job.state) == (name, "created")


async def test_bulk_and_batch_sends_name_each_unserved_queue_once(
    client: httpx.AsyncClient, db: Database,
) -> None:
    await workers(db)
    bulk = await client.post("/jobs/bulk", json={"jobs": [
        {"queue": "mail"}, {"queue": "mial"}, {"queue": "imports"}, {"queue": "mial"}]})
    assert bulk.status_code == 201
    assert len(bulk.json()["jobs"]) == 4
    assert [w["queue"] for w in bulk.json()["warnings"]] == ["imports", "mial"]
    only_served = await client.post("/jobs/bulk", json={"jobs": [{"queue": "mail"}]})
    assert "warnings" not in only_served.json()
    batch = await client.post("/batches", json={
        "jobs": [{"queue": "mail"}], "on_complete_queue": "mail-done"})
    assert batch.status_code == 201
    assert [w["queue"] for w in batch.json()["warnings"]] == ["mail-done"]


async def test_queue_listings_and_the_dashboard_flag_unserved_queues(
    app: Starlette, client: httpx.AsyncClient, db: Database,
) -> None:
    await workers(db)
    for name in ("mail", "imports"):
        await core.send(db, name)
    listed = {q["name"]: q["served"] for q in (await client.get("/queues")).json()["queues"]}
    assert listed == {"mail": True, "imports": False}
    assert (await client.get("/queues/imports")).json()["served"] is False
    async with logged_in(app) as browser:
        page = (await browser.get("/dashboard")).text
    rows = {name: page.split(f'data-queue="{name}"')[1].split("</tr>")[0]
            for name in ("mail", "imports")}
    assert "no worker" in rows["imports"] and "no worker" not in rows["mail"]


async def test_the_served_queues_are_read_once_per_ttl(db: Database) -> None:
    cached = ServedQueues(db, seen_within=60, ttl=3600)
    fresh = ServedQueues(db, seen_within=60, ttl=0)
    assert await cached.served() == await fresh.served() == frozenset()
    await register_worker(db, "late", {"mail": 1})
    assert await cached.served() == frozenset()  # within its ttl: not read again
    assert await fresh.served() == {"mail"}
