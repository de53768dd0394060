"""Queues over HTTP: counts per state, policies, pause/resume, redrive, cancel-waiting."""

from __future__ import annotations

import httpx

from shared import queue as core
from shared.db import Database


async def test_queues_with_counts(client: httpx.AsyncClient, db: Database) -> None:
    for _ in range(3):
        await client.post("/jobs", json={"queue": "mail"})
    [job] = await core.fetch(db, {"mail": 1}, "w1")
    await core.complete(db, job.id)
    listed = {q["name"]: q for q in (await client.get("/queues")).json()["queues"]}
    assert "mail" in listed
    assert listed["mail"]["counts"] == {"created": 2, "retry": 0, "active": 0, "completed": 1,
                                   "failed": 0, "cancelled": 0}
    one = (await client.get("/queues/mail")).json()
    assert one["counts"]["completed"] == 1
    assert one["retry_limit"] == 2
    assert (await client.get("/queues/nosuch")).status_code == 404
    assert (await client.get("/queues/Bad!")).status_code == 400


async def test_put_creates_then_changes(client: httpx.AsyncClient, db: Database) -> None:
    created = await client.put("/queues/reports", json={"retry_limit": 5, "fleet_limit": 3,
                                                        "dead_letter": "reports-dead"})
    assert created.status_code == 201, created.text
    assert (created.json()["retry_limit"], created.json()["fleet_limit"]) == (5, 3)
    assert (await core.get_queue(db, "reports-dead")).name == "reports-dead"
    changed = await client.put("/queues/reports", json={"run_timeout_seconds": None,
                                                        "paused": True})
    assert changed.status_code == 200
    body = changed.json()
    assert (body["retry_limit"], body["run_timeout_seconds"], body["paused"]) == (5, None, True)


async def test_bad_policies_change_nothing(client: httpx.AsyncClient, db: Database) -> None:
    await client.put("/queues/q", json={"retry_limit": 1})
    for body, field in [({"retry_limit": -1}, "retry_limit"),
                        ({"dead_letter": "q"}, "dead_letter"),
                        ({"fleet_limit": 0}, "fleet_limit"),
                        ({"retry_limit": 3, "colour": "blue"}, "colour"),
                        ({"run_timeout_seconds": 0}, "run_timeout_seconds")]:
        response = await client.put("/queues/q", json=body)
        assert response.status_code == 422, body
        assert response.json()["field"] == field
    assert (await core.get_queue(db, "q")).retry_limit == 1


async def test_pause_resume(client: httpx.AsyncClient, db: Database) -> None:
    await client.post("/jobs", json={"queue": "q"})
    paused = await client.post("/queues/q/pause")
    assert paused.status_code == 200
    assert paused.json()["paused"] is True
    assert await core.fetch(db, {"q": 1}, "w") == []
    resumed = await client.post("/queues/q/resume")
    assert resumed.json()["paused"] is False
    assert len(await core.fetch(db, {"q": 1}, "w")) == 1
    assert (await client.post("/queues/nosuch/pause")).status_code == 404


async def test_redrive(client: httpx.AsyncClient, db: Database) -> None:
    await client.put("/queues/work", json={"retry_limit": 0, "dead_letter": "dead"})
    job_id = (await client.post("/jobs", json={"queue": "work"})).json()["id"]
    [job] = await core.fetch(db, {"work": 1}, "w")
    assert job.id == job_id
    result = await core.fail(db, job_id, "boom")
    response = await client.post("/queues/dead/redrive")
    assert response.status_code == 200
    assert response.json() == {"ids": [result.dead_letter_id]}
    assert (await core.get_job(db, result.dead_letter_id)).queue == "work"
    assert (await client.post("/queues/nosuch/redrive")).status_code == 404


async def test_cancel_waiting_cancels_the_waiting_jobs_and_leaves_active_ones(
    client: httpx.AsyncClient, reader: httpx.AsyncClient, db: Database,
) -> None:
    sent = (await client.post("/jobs/bulk", json={"jobs": [{"queue": "q"}] * 5})).json()
    [active] = await core.fetch(db, {"q": 1}, "w")
    assert (await reader.post("/queues/q/cancel-waiting")).status_code == 403
    response = await client.post("/queues/q/cancel-waiting")
    assert response.status_code == 200, response.text
    assert response.json() == {"cancelled": 4}
    states = {j["id"]: (await client.get(f"/jobs/{j['id']}")).json()["state"]
              for j in sent["jobs"]}
    assert sorted(states.values()) == ["active"] + ["cancelled"] * 4
    assert states[active.id] == "active"
    counts = (await client.get("/queues/q")).json()["counts"]
    assert (counts["created"], counts["active"], counts["cancelled"]) == (0, 1, 4)
    assert (await client.post("/queues/q/cancel-waiting")).json() == {"cancelled": 0}
    missing = await client.post("/queues/nosuch/cancel-waiting")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
