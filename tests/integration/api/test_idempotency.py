"""Idempotency-Key: the same request twice within a day has one effect."""

from __future__ import annotations

import asyncio

import httpx
from asgi_lifespan import LifespanManager

from api.app import create_app
from shared import queue as core
from shared.db import Database
from tests.conftest import test_settings as settings_for
from tests.integration.api.conftest import WRITER, WRITER_SECRET, api_settings, client_for


async def test_same_key_returns_the_first_response(client: httpx.AsyncClient,
                                                   db: Database) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = await client.post("/jobs", json={"queue": "q", "data": {"a": 1}}, headers=headers)
    assert first.status_code == 201
    again = await client.post("/jobs", json={"data": {"a": 1}, "queue": "q"}, headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert (await core.count_jobs(db))["q"]["created"] == 1


async def test_same_key_other_request_is_refused(client: httpx.AsyncClient,
                                                 db: Database) -> None:
    headers = {"Idempotency-Key": "k1"}
    await client.post("/jobs", json={"queue": "q"}, headers=headers)
    other = await client.post("/jobs", json={"queue": "other"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert other.json()["field"] == "Idempotency-Key"
    assert "other" not in await core.count_jobs(db)


async def test_concurrent_requests_send_once(client: httpx.AsyncClient, db: Database) -> None:
    headers = {"Idempotency-Key": "burst"}
    body = {"jobs": [{"queue": "q", "data": {"i": i}} for i in range(20)]}
    responses = await asyncio.gather(*[
        client.post("/jobs/bulk", json=body, headers=headers) for _ in range(8)])
    assert {r.status_code for r in responses} == {201}
    assert len({r.text for r in responses}) == 1
    assert (await core.count_jobs(db))["q"]["created"] == 20


async def test_keys_belong_to_their_client(db_url: str, db: Database) -> None:
    """Two clients with the same scope sending the same key and body: two jobs, each
    client told its own, and each replay answered with that client's first response."""
    other_secret = "second-writer-0123456789abcdefghijkl"
    app = create_app(settings_for(db_url, MS8_ENV="production"), api_settings(
        MS8_API_KEYS=f"writer:{WRITER_SECRET}:read,write;second:{other_secret}:read,write"))
    headers = {"Idempotency-Key": "same"}
    body = {"jobs": [{"queue": "q", "data": {"n": 1}}]}
    async with LifespanManager(app), client_for(app, WRITER) as mine, \
            client_for(app, {"Authorization": f"Bearer {other_secret}"}) as theirs:
        first = await mine.post("/batches", json=body, headers=headers)
        second = await theirs.post("/batches", json=body, headers=headers)
        assert (first.status_code, second.status_code) == (201, 201), second.text
        assert first.json()["id"] != second.json()["id"]
        assert "idempotent-replayed" not in second.headers
        for client, response in ((mine, first), (theirs, second)):
            replay = await client.post("/batches", json=body, headers=headers)
            assert replay.json() == response.json()
        single = [await c.post("/jobs", json={"queue": "s"}, headers={"Idempotency-Key": "j"})
                  for c in (mine, theirs)]
        assert single[0].json()["id"] != single[1].json()["id"]
    counts = await core.count_jobs(db)
    assert (counts["q"]["created"], counts["s"]["created"]) == (2, 2)


async def test_failed_request_keeps_no_key(client: httpx.AsyncClient, db: Database) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    await client.post("/batches", json={"jobs": [{"queue": "q"}]})
    bad = await client.post("/jobs/bulk", json={"jobs": [{"queue": "q", "priority": 99999}]},
                            headers=headers)
    assert bad.status_code == 422
    good = await client.post("/jobs", json={"queue": "q"}, headers=headers)
    assert good.status_code == 201
    assert "idempotent-replayed" not in good.headers


async def test_key_expires_after_a_day(client: httpx.AsyncClient, db: Database) -> None:
    headers = {"Idempotency-Key": "daily"}
    first = (await client.post("/jobs", json={"queue": "q"}, headers=headers)).json()
    await db.pool.execute(
        "UPDATE ms8jobs.idempotency_keys SET created_at = now() - interval '25 hours'")
    second = (await client.post("/jobs", json={"queue": "q"}, headers=headers)).json()
    assert second["id"] != first["id"]
    from shared import idempotency

    await db.pool.execute(
        "UPDATE ms8jobs.idempotency_keys SET created_at = now() - interval '25 hours'")
    assert await idempotency.delete_expired(db) == 1


async def test_malformed_key(client: httpx.AsyncClient, db: Database) -> None:
    response = await client.post("/jobs", json={"queue": "q"},
                                 headers={"Idempotency-Key": "x" * 201})
    assert response.status_code == 400
    assert response.json()["field"] == "Idempotency-Key"
    assert await core.count_jobs(db) == {}
