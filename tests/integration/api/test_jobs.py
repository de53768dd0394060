"""Jobs over HTTP: every endpoint, status and error, with the database checked after."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from asgi_lifespan import LifespanManager

from api.app import create_app
from shared import queue as core
from shared.db import Database
from tests.conftest import test_settings as settings_for
from tests.integration.api.conftest import WRITER, api_settings, client_for


async def send(client: httpx.AsyncClient, **body: object) -> int:
    response = await client.post("/jobs", json={"queue": "q", **body})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_send_get_and_location(client: httpx.AsyncClient, db: Database) -> None:
    response = await client.post("/jobs", json={
        "queue": "emails", "data": {"to": "a@b.c"}, "priority": 5, "retry_limit": 7,
        "retry_delay": 1.5, "retry_backoff": False, "retry_delay_max": 30, "run_timeout": 60})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] is True
    assert response.headers["location"] == f"/jobs/{body['id']}"
    job = (await client.get(f"/jobs/{body['id']}")).json()
    assert (job["queue"], job["data"], job["priority"], job["state"]) == (
        "emails", {"to": "a@b.c"}, 5, "created")
    assert (job["retry_limit"], job["retry_delay_seconds"], job["retry_backoff"],
            job["retry_delay_max_seconds"], job["run_timeout_seconds"]) == (7, 1.5, False, 30, 60)
    assert (await core.get_job(db, body["id"])).data == {"to": "a@b.c"}


async def test_start_after_and_delay(client: httpx.AsyncClient) -> None:
    later = await send(client, start_after="2031-02-03T04:05:06+02:00")
    job = (await client.get(f"/jobs/{later}")).json()
    assert job["start_after"] == "2031-02-03T02:05:06Z"
    delayed = await send(client, delay=3600)
    start = datetime.fromisoformat((await client.get(f"/jobs/{delayed}")).json()["start_after"])
    assert (start - datetime.now(UTC)).total_seconds() > 3000


async def test_singleton_returns_the_holder(client: httpx.AsyncClient) -> None:
    first = await send(client, singleton_key="user-1")
    again = await client.post("/jobs", json={"queue": "q", "singleton_key": "user-1"})
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["created"]) == (first, False)


async def test_send_many(client: httpx.AsyncClient, db: Database) -> None:
    response = await client.post("/jobs/bulk", json={"jobs": [
        {"queue": "a", "data": {"n": 1}}, {"queue": "b", "singleton_key": "k"},
        {"queue": "b", "singleton_key": "k"}]})
    assert response.status_code == 201, response.text
    results = response.json()["jobs"]
    assert [r["created"] for r in results] == [True, True, False]
    assert results[1]["id"] == results[2]["id"]
    assert (await core.get_job(db, results[0]["id"])).data == {"n": 1}


async def test_send_many_of_the_common_shape_by_copy(client: httpx.AsyncClient,
                                                     db: Database) -> None:
    """Enough jobs of only queue, data and priority for the COPY: every one created, the
    ids in request order, the reply replayed as it was."""
    jobs = [{"queue": "wide" if i % 2 else "far", "data": {"i": i}, "priority": i % 3}
            for i in range(600)]
    headers = {"Idempotency-Key": "wide-1"}
    response = await client.post("/jobs/bulk", json={"jobs": jobs}, headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert all(r["created"] is True and set(r) == {"id", "created"} for r in body["jobs"])
    ids = [r["id"] for r in body["jobs"]]
    assert ids == sorted(ids) and len(set(ids)) == len(jobs)
    assert [w["queue"] for w in body["warnings"]] == ["far", "wide"]
    for i in (0, 1, 599):
        job = await core.get_job(db, ids[i])
        assert (job.queue, job.data, job.priority) == (jobs[i]["queue"], {"i": i}, i % 3)
    again = await client.post("/jobs/bulk", json={"jobs": jobs}, headers=headers)
    assert (again.status_code, again.text) == (201, response.text)
    assert again.headers["idempotent-replayed"] == "true"
    assert sum(n for counts in (await core.count_jobs(db)).values()
               for n in counts.values()) == len(jobs)


async def test_bulk_error_names_the_item(client: httpx.AsyncClient, db: Database) -> None:
    response = await client.post("/jobs/bulk", json={"jobs": [
        {"queue": "a"}, {"queue": "a", "priority": 5000}]})
    assert response.status_code == 422
    assert response.json()["field"] == "jobs[1].priority"
    assert await core.count_jobs(db) == {}


async def test_list_filters_and_pages(client: httpx.AsyncClient, db: Database) -> None:
    ids = [await send(client, data={"i": i}) for i in range(5)]
    other = (await client.post("/jobs", json={"queue": "other"})).json()["id"]
    await core.cancel(db, [ids[0]])

    page = (await client.get("/jobs", params={"queue": "q", "limit": 2})).json()
    assert [j["id"] for j in page["jobs"]] == [ids[4], ids[3]]
    page2 = (await client.get("/jobs", params={"queue": "q", "limit": 2,
                                               "cursor": page["next_cursor"]})).json()
    assert [j["id"] for j in page2["jobs"]] == [ids[2], ids[1]]
    page3 = (await client.get("/jobs", params={"queue": "q", "limit": 2,
                                               "cursor": page2["next_cursor"]})).json()
    assert [j["id"] for j in page3["jobs"]] == [ids[0]]
    assert page3["next_cursor"] is None

    cancelled = (await client.get("/jobs", params={"state": "cancelled"})).json()
    assert [j["id"] for j in cancelled["jobs"]] == [ids[0]]
    both = (await client.get("/jobs?state=created&state=cancelled&queue=q")).json()
    assert len(both["jobs"]) == 5
    commas = (await client.get("/jobs?state=created,cancelled")).json()
    assert {j["id"] for j in commas["jobs"]} == {*ids, other}


@pytest.mark.parametrize("cursor", ["nope", "ffffffffffffffff", "", "0000000000000001x"])
async def test_bad_cursor(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get("/jobs", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["code"] == "bad_cursor"
    assert response.json()["field"] == "cursor"


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=abc", "limit"), ("limit=1001", "limit"),
    ("state=done", "state"), ("queue=Bad%20Name", "queue"), ("limit=1&limit=2", "limit"),
])
async def test_bad_list_parameters(client: httpx.AsyncClient, query: str, field: str) -> None:
    response = await client.get(f"/jobs?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_parameter"
    assert response.json()["field"] == field


async def test_unknown_queue_or_job(client: httpx.AsyncClient) -> None:
    assert (await client.get("/jobs", params={"queue": "nosuch"})).status_code == 404
    for method, path in [("GET", "/jobs/999"), ("POST", "/jobs/999/cancel"),
                         ("POST", "/jobs/999/retry"), ("DELETE", "/jobs/999")]:
        response = await client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "not_found"
    bad = await client.get("/jobs/abc")
    assert bad.status_code == 400
    assert bad.json() == {"code": "invalid_parameter", "field": "id",
                          "message": "id must be a whole number, got 'abc'"}
    assert (await client.get("/jobs/0")).status_code == 400


async def test_cancel_retry_delete(client: httpx.AsyncClient, db: Database) -> None:
    job_id = await send(client)
    cancelled = await client.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    again = await client.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_state"
    assert "cancelled" in again.json()["message"]

    retried = await client.post(f"/jobs/{job_id}/retry")
    assert retried.status_code == 200
    assert retried.json()["state"] == "created"
    assert (await client.post(f"/jobs/{job_id}/retry")).status_code == 409

    [active] = await core.fetch(db, {"q": 1}, "worker-1")
    refused = await client.delete(f"/jobs/{active.id}")
    assert refused.status_code == 409
    assert "cancel" in refused.json()["message"]
    await core.fail(db, active.id, "boom", "Traceback: boom", retry=False)
    failed = (await client.get(f"/jobs/{job_id}")).json()
    assert (failed["state"], failed["error_message"], failed["error_traceback"]) == (
        "failed", "boom", "Traceback: boom")
    assert (await client.post(f"/jobs/{job_id}/retry")).json()["state"] == "created"

    deleted = await client.delete(f"/jobs/{job_id}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await client.get(f"/jobs/{job_id}")).status_code == 404


BAD_BODIES = [
    ({"data": {}}, "invalid_body", "queue"),
    ({"queue": 5}, "invalid_body", "queue"),
    ({"queue": "UPPER"}, "invalid_body", "queue"),
    ({"queue": "q\n"}, "invalid_body", "queue"),
    ({"queue": "q", "priority": "high"}, "invalid_body", "priority"),
    ({"queue": "q", "priority": 1.5}, "invalid_body", "priority"),
    ({"queue": "q", "priority": True}, "invalid_body", "priority"),
    ({"queue": "q", "priority": 1001}, "invalid_body", "priority"),
    ({"queue": "q", "delay": -1}, "invalid_body", "delay"),
    ({"queue": "q", "run_timeout": 0}, "invalid_body", "run_timeout"),
    ({"queue": "q", "start_after": "tomorrow"}, "invalid_body", "start_after"),
    ({"queue": "q", "start_after": "2030-01-01T00:00:00"}, "invalid_body", "start_after"),
    ({"queue": "q", "start_after": "2030-01-01T00:00:00Z", "delay": 5}, "invalid_body",
     "delay"),
    ({"queue": "q", "singleton_key": ""}, "invalid_body", "singleton_key"),
    ({"queue": "q", "data": {"a": "nul\u0000"}}, "invalid_body", "data.a"),
    ({"queue": "q", "colour": "red"}, "unknown_field", "colour"),
    ([1, 2], "invalid_body", "body"),
]


@pytest.mark.parametrize("body, code, field", BAD_BODIES)
async def test_bad_bodies_write_nothing(client: httpx.AsyncClient, db: Database,
                                        body: object, code: str, field: str) -> None:
    response = await client.post("/jobs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert (error["code"], error["field"]) == (code, field)
    assert field.split(".")[0] in error["message"]
    assert "Traceback" not in response.text
    assert await core.count_jobs(db) == {}


async def test_malformed_json_and_media_type(client: httpx.AsyncClient, db: Database) -> None:
    headers = {"content-type": "application/json"}
    for raw in [b"{", b"", b"{'queue': 'q'}", b"NaN", b'{"queue": "q"} x']:
        response = await client.post("/jobs", content=raw, headers=headers)
        assert response.status_code == 400, raw
        assert response.json()["code"] == "malformed_json"
    plain = await client.post("/jobs", content=b'{"queue": "q"}',
                              headers={"content-type": "text/plain"})
    assert plain.status_code == 415
    assert plain.json()["code"] == "unsupported_media_type"
    assert await core.count_jobs(db) == {}


async def test_body_over_the_limit(client: httpx.AsyncClient, db: Database) -> None:
    big = {"queue": "q", "data": {"blob": "x" * 70_000}}
    response = await client.post("/jobs", json=big)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"

    async def chunks():  # no content-length: refused while streaming
        for _ in range(20):
            yield b" " * 4096
    streamed = await client.post("/jobs", content=chunks(),
                                 headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert await core.count_jobs(db) == {}


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    wrong = await client.patch("/jobs/1")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"
    assert wrong.headers["allow"] == "DELETE, GET"


async def test_one_job_more_than_the_request_limit_is_refused(db_url: str,
                                                              db: Database) -> None:
    app = create_app(settings_for(db_url, MS8_ENV="production"),
                     api_settings(MS8_API_MAX_JOBS_PER_REQUEST="3"))
    jobs = [{"queue": "q", "data": {"i": i}} for i in range(4)]
    async with LifespanManager(app), client_for(app, WRITER) as client:
        for path in ("/jobs/bulk", "/batches"):
            too_many = await client.post(path, json={"jobs": jobs})
            assert too_many.status_code == 422, (path, too_many.text)
            assert too_many.json()["field"] == "jobs"
            assert "at most 3" in too_many.json()["message"]
        assert await core.count_jobs(db) == {}
        assert (await client.post("/jobs/bulk", json={"jobs": jobs[:3]})).status_code == 201
        assert (await client.post("/batches", json={"jobs": jobs[:3]})).status_code == 201
