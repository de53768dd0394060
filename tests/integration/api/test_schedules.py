"""Schedules and the worker fleet over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson

from shared import queue as core
from shared.db import Database


async def test_schedule_lifecycle(client: httpx.AsyncClient, db: Database) -> None:
    created = await client.post("/schedules", json={
        "name": "hourly-report", "cron": "0 * * * *", "queue": "reports",
        "timezone": "Europe/Berlin", "data": {"kind": "hourly"}, "options": {"priority": 3}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == "/schedules/hourly-report"
    assert (body["cron"], body["timezone"], body["enabled"], body["last_firing"]) == (
        "0 * * * *", "Europe/Berlin", True, None)
    next_fire = datetime.fromisoformat(body["next_fire_at"])
    assert next_fire > datetime.now(UTC) and next_fire.minute == 0

    listed = (await client.get("/schedules")).json()["schedules"]
    assert {"daily-batch", "hourly-report"} <= {s["name"] for s in listed}
    taken = await client.post("/schedules", json={"name": "hourly-report", "cron": "@daily",
                                                  "queue": "reports"})
    assert taken.status_code == 409

    disabled = (await client.post("/schedules/hourly-report/disable")).json()
    assert (disabled["enabled"], disabled["next_fire_at"]) == (False, None)
    fired = await client.post("/schedules/hourly-report/run")
    assert fired.status_code == 201
    firing = fired.json()
    assert firing["kind"] == "manual"
    assert fired.headers["location"] == f"/jobs/{firing['job_id']}"
    job = await core.get_job(db, firing["job_id"])
    assert (job.queue, job.data, job.priority) == (
        "reports", {"kind": "hourly", "fire_time": firing["fire_time"].replace("Z", "+00:00")},
        3)
    again = (await client.get("/schedules/hourly-report")).json()
    assert again["last_firing"]["job_id"] == firing["job_id"]

    changed = await client.patch("/schedules/hourly-report", json={"cron": "*/5 * * * *",
                                                                   "enabled": True})
    assert changed.status_code == 200
    assert (changed.json()["cron"], changed.json()["enabled"]) == ("*/5 * * * *", True)
    assert (await client.post("/schedules/hourly-report/enable")).status_code == 200
    assert (await client.delete("/schedules/hourly-report")).status_code == 204
    assert (await client.get("/schedules/hourly-report")).status_code == 404


async def test_bad_schedules_save_nothing(client: httpx.AsyncClient) -> None:
    for body, field in [
        ({"name": "x", "cron": "61 * * * *", "queue": "q"}, "cron"),
        ({"name": "x", "cron": "@daily", "queue": "q", "timezone": "Mars/Olympus"},
         "timezone"),
        ({"name": "x", "cron": "@daily", "queue": "q", "options": {"colour": 1}},
         "options.colour"),
        ({"name": "x", "cron": "@daily"}, "queue"),
        ({"name": "X Y", "cron": "@daily", "queue": "q"}, "name"),
    ]:
        response = await client.post("/schedules", json=body)
        assert response.status_code == 422, body
        assert response.json()["field"] == field
    assert "x" not in {s["name"] for s in (await client.get("/schedules")).json()["schedules"]}
    assert (await client.patch("/schedules/nosuch", json={})).status_code == 404
    assert (await client.post("/schedules/nosuch/run")).status_code == 404
    assert (await client.delete("/schedules/nosuch")).status_code == 404
    bad = await client.patch("/schedules/daily-batch", json={"cron": "nope"})
    assert bad.status_code == 422
    assert (await client.get("/schedules/daily-batch")).json()["cron"] == "0 2 * * *"


async def test_workers(client: httpx.AsyncClient, db: Database) -> None:
    assert (await client.get("/workers")).json() == {"workers": []}
    await db.pool.execute(db.queries.upsert_worker, "w-1", "host-a", 42,
                          orjson.dumps({"q": 4}).decode(), 4, True)
    await core.send(db, "q")
    await core.fetch(db, {"q": 1}, "w-1")
    [worker] = (await client.get("/workers")).json()["workers"]
    assert (worker["id"], worker["host"], worker["pid"], worker["queues"],
            worker["concurrency"], worker["active_jobs"]) == ("w-1", "host-a", 42, {"q": 4}, 4, 1)
