"""Batches over HTTP: created whole, totals live and then frozen, pages, completion job."""

from __future__ import annotations

import httpx

from shared import queue as core
from shared.db import Database


async def test_batch_lifecycle(client: httpx.AsyncClient, db: Database) -> None:
    response = await client.post("/batches", json={
        "name": "nightly", "jobs": [{"queue": "collect", "data": {"n": i}} for i in range(3)],
        "on_complete_queue": "report", "on_complete_data": {"done": True}})
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/batches/{created['id']}"
    assert [r["created"] for r in created["jobs"]] == [True, True, True]
    batch = (await client.get(f"/batches/{created['id']}")).json()
    assert (batch["name"], batch["total"], batch["sealed"], batch["finished_at"]) == (
        "nightly", 3, True, None)
    assert batch["totals"] == {"waiting": 3, "active": 0, "completed": 0, "failed": 0,
                               "cancelled": 0}

    jobs = await core.fetch(db, {"collect": 3}, "w")
    await core.complete(db, jobs[0].id)
    await core.fail(db, jobs[1].id, "boom", retry=False)
    live = (await client.get("/batches")).json()["batches"][0]
    assert live["totals"] == {"waiting": 0, "active": 1, "completed": 1, "failed": 1,
                              "cancelled": 0}
    await core.complete(db, jobs[2].id)
    done = (await client.get(f"/batches/{created['id']}")).json()
    assert done["finished_at"] is not None
    assert done["totals"]["completed"] == 2
    completion = await core.get_job(db, done["completion_job_id"])
    assert completion.queue == "report"
    assert completion.data["done"] is True
    assert completion.data["batch_id"] == created["id"]


async def test_empty_batch_finishes_at_once(client: httpx.AsyncClient) -> None:
    created = (await client.post("/batches", json={"jobs": []})).json()
    batch = (await client.get(f"/batches/{created['id']}")).json()
    assert batch["finished_at"] is not None


async def test_batch_pages_and_errors(client: httpx.AsyncClient, db: Database) -> None:
    ids = [(await client.post("/batches", json={"jobs": [{"queue": "q"}]})).json()["id"]
           for _ in range(3)]
    first = (await client.get("/batches", params={"limit": 2})).json()
    assert [b["id"] for b in first["batches"]] == [ids[2], ids[1]]
    second = (await client.get("/batches", params={"cursor": first["next_cursor"]})).json()
    assert [b["id"] for b in second["batches"]] == [ids[0]]
    assert second["next_cursor"] is None
    assert (await client.get("/batches", params={"cursor": "x"})).json()["code"] == "bad_cursor"
    assert (await client.get("/batches/999")).status_code == 404

    before = await core.count_jobs(db)
    bad = await client.post("/batches", json={"jobs": [{"queue": "q"}, {"queue": "BAD"}]})
    assert bad.status_code == 422
    assert bad.json()["field"] == "jobs[1].queue"
    orphan = await client.post("/batches", json={"jobs": [], "on_complete_data": {}})
    assert orphan.status_code == 422
    assert orphan.json()["field"] == "on_complete_queue"
    assert await core.count_jobs(db) == before
    assert len((await client.get("/batches")).json()["batches"]) == 3
