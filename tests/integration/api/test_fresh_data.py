"""POST /user-roles/{id}/fresh-data: 202 with the job and its Location, one job per
user-role at a time, write scope, 404 for an unknown user-role, ids as ASCII digits."""

from __future__ import annotations

import httpx
import pytest

from analytics import fresh, user_roles
from shared import queue
from shared.db import Database
from tests.support import register_worker


async def test_202_with_the_job_and_its_location_then_the_same_job(
    client: httpx.AsyncClient, db: Database,
) -> None:
    await user_roles.seed(db, 3)
    await register_worker(db, "w1", {fresh.FRESH_QUEUE: 2})
    first = await client.post("/user-roles/3/fresh-data")
    assert first.status_code == 202, first.text
    body = first.json()
    assert body == {"id": body["id"], "created": True, "user_role_id": 3}
    assert first.headers["location"] == f"/jobs/{body['id']}"

    job = (await client.get(first.headers["location"])).json()
    assert (job["queue"], job["state"], job["priority"]) == ("fresh-data", "created", 100)
    assert job["data"]["user_role_id"] == 3 and job["run_timeout_seconds"] == 1800
    assert job["singleton_key"] == "fresh-data:3"

    again = await client.post("/user-roles/3/fresh-data")
    assert again.status_code == 202
    assert again.json() == {"id": body["id"], "created": False, "user_role_id": 3}
    assert again.headers["location"] == first.headers["location"]
    # Once it has run, a new request is a new job.
    await queue.fetch(db, {fresh.FRESH_QUEUE: 1}, "w1")
    assert (await client.post("/user-roles/3/fresh-data")).json()["created"] is False
    await queue.complete_many(db, [(body["id"], {"status": "complete", "missing": []})])
    later = await client.post("/user-roles/3/fresh-data")
    assert later.json()["created"] is True and later.json()["id"] != body["id"]


async def test_a_queue_no_worker_serves_is_said(client: httpx.AsyncClient, db: Database
                                                ) -> None:
    await user_roles.seed(db, 1)
    answer = await client.post("/user-roles/1/fresh-data")
    assert answer.status_code == 202
    [warning] = answer.json()["warnings"]
    assert (warning["code"], warning["queue"]) == ("queue_not_served", "fresh-data")


async def test_an_unknown_user_role_is_404_and_sends_nothing(
    client: httpx.AsyncClient, db: Database,
) -> None:
    await user_roles.seed(db, 1)
    answer = await client.post("/user-roles/2/fresh-data")
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found" and "2" in answer.json()["message"]
    assert await queue.list_jobs(db) == []


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "1.5", "１", "١", "²", "9" * 30, "+1", "07"])
async def test_a_bad_id_is_a_json_refusal(client: httpx.AsyncClient, db: Database,
                                          raw: str) -> None:
    await user_roles.seed(db, 1)
    answer = await client.post(f"/user-roles/{raw}/fresh-data")
    assert answer.status_code in (400, 404), (raw, answer.text)
    assert answer.json()["code"] in ("invalid_parameter", "not_found")
    assert await queue.list_jobs(db) == []


async def test_it_needs_the_write_scope(reader: httpx.AsyncClient,
                                        anonymous: httpx.AsyncClient, db: Database) -> None:
    await user_roles.seed(db, 1)
    assert (await reader.post("/user-roles/1/fresh-data")).status_code == 403
    assert (await anonymous.post("/user-roles/1/fresh-data")).status_code == 401
    assert (await reader.get("/user-roles/1/fresh-data")).status_code == 405
    assert await queue.list_jobs(db) == []
