"""Idempotency-Key: the same request twice within a day has one effect."""

from __future__ import annotations

import asyncio

import httpx

from shared import queue as core
from shared.db import Database
from tests.integration.api.conftest import READER_SECRET


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


async def test_keys_belong_to_their_client(client: httpx.AsyncClient,
                                           anonymous: httpx.AsyncClient, db: Database) -> None:
    await client.put("/queues/q", json={})
    mine = await client.post("/batches", json={"jobs": [{"queue": "q"}]},
                             headers={"Idempotency-Key": "same"})
    assert mine.status_code == 201
    theirs = await anonymous.post(
        "/batches", json={"jobs": [{"queue": "q"}]},
        headers={"Idempotency-Key": "same", "X-API-Key": READER_SECRET})
    assert theirs.status_code == 403  # the reader may not write at all
    replay = await client.post("/batches", json={"jobs": [{"queue": "q"}]},
                               headers={"Idempotency-Key": "same"})
    assert replay.json() == mine.json()
    assert (await core.count_jobs(db))["q"]["created"] == 1


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
