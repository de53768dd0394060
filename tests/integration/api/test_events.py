"""Server-Sent Events on a real uvicorn: job and batch streams in order, the global stream,
and subscriptions released when clients go away."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette

from shared import queue as core
from shared.db import Database
from tests.integration.api.conftest import WRITER
from tests.integration.api.sse import Event, events
from tests.support import wait_until

TIMEOUT = httpx.Timeout(20.0)


async def next_event(stream: object, timeout: float = 15.0) -> Event:
    return await asyncio.wait_for(anext(stream), timeout)  # type: ignore[arg-type]


async def test_job_stream_follows_progress_to_the_end(live_url: str, db: Database) -> None:
    job_id = (await core.send(db, "work")).id
    async with httpx.AsyncClient(base_url=live_url, headers=WRITER, timeout=TIMEOUT) as http:
        async with http.stream("GET", f"/jobs/{job_id}/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = events(response)
            first = await next_event(stream)
            assert (first.name, first.data["state"], first.id) == ("job", "created", "1")

            [job] = await core.fetch(db, {"work": 1}, "w1")
            active = await next_event(stream)
            assert (active.data["state"], active.data["worker_id"]) == ("active", "w1")
            for percent in (25, 50, 75):  # one at a time: each arrives
                await core.set_progress(db, job_id, percent, f"step {percent}")
                event = await next_event(stream)
                assert (event.data["progress"], event.data["progress_message"]) == (
                    percent, f"step {percent}")
            for percent in range(76, 100):  # a burst: coalesced, but never backwards
                await core.set_progress(db, job_id, percent)
            await core.complete(db, job.id, {"ok": True})
            seen = []
            async for event in stream:
                seen.append(event)
    assert seen[-1].name == "end"
    updates = [e for e in seen if e.name == "job"]
    assert updates[-1].data["state"] == "completed"
    assert updates[-1].data["output"] == {"ok": True}
    progress = [e.data["progress"] for e in updates]
    assert progress == sorted(progress)
    ids = [int(e.id) for e in updates]
    assert ids == sorted(ids) and ids[0] > int(first.id)


async def test_finished_job_stream_ends_at_once(live_url: str, db: Database) -> None:
    job_id = (await core.send(db, "work")).id
    await core.cancel(db, [job_id])
    async with httpx.AsyncClient(base_url=live_url, headers=WRITER, timeout=TIMEOUT) as http:
        async with http.stream("GET", f"/jobs/{job_id}/events") as response:
            got = [e async for e in events(response)]
    assert [(e.name, e.data.get("state")) for e in got] == [("job", "cancelled"),
                                                           ("end", None)]


async def test_deleted_job_stream_says_gone(live_url: str, db: Database) -> None:
    job_id = (await core.send(db, "work")).id
    async with httpx.AsyncClient(base_url=live_url, headers=WRITER, timeout=TIMEOUT) as http:
        async with http.stream("GET", f"/jobs/{job_id}/events") as response:
            stream = events(response)
            await next_event(stream)
            await core.delete(db, [job_id])
            gone = await next_event(stream)
    assert (gone.name, gone.data) == ("gone", {"id": job_id})


async def test_unknown_job_stream_is_404(live_url: str) -> None:
    async with httpx.AsyncClient(base_url=live_url, headers=WRITER, timeout=TIMEOUT) as http:
        response = await http.get("/jobs/12345/events")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert (await http.get("/batches/12345/events")).status_code == 404
        assert (await http.get("/jobs/1/events", headers={"Authorization": ""})).status_code \
            == 401


async def test_batch_stream_totals_until_finished(live_url: str, db: Database) -> None:
    batch_id, _ = await core.send_batch(db, [core.JobSpec.of("collect") for _ in range(3)])
    async with httpx.AsyncClient(base_url=live_url, headers=WRITER, timeout=TIMEOUT) as http:
        async with http.stream("GET", f"/batches/{batch_id}/events") as response:
            stream = events(response)
            first = await next_event(stream)
            assert first.data["totals"]["waiting"] == 3
            jobs = await core.fetch(db, {"collect": 3}, "w")
            for job in jobs:
                await core.complete(db, job.id)
            seen = [e async for e in stream]
    assert seen[-1].name == "end"
    last = [e for e in seen if e.name == "batch"][-1]
    assert last.data["finished_at"] is not None
    assert last.data["totals"]["completed"] == 3
    completed = [e.data["totals"]["completed"] for e in seen if e.name == "batch"]
    assert completed == sorted(completed)


async def test_global_stream_and_release(live_url: str, app: Starlette, db: Database) -> None:
    hub = app.state.ctx.hub
    async with httpx.AsyncClient(base_url=live_url, headers=WRITER, timeout=TIMEOUT) as http:
        async with http.stream("GET", "/events") as response:
            stream = events(response)
            await wait_until(lambda: hub.subscribers == 1, message="subscribed")
            sent = await core.send(db, "mail")
            waiting = await next_event(stream)
            assert (waiting.name, waiting.data) == ("change", {"state": "waiting",
                                                               "queue": "mail", "ids": []})
            await core.fetch(db, {"mail": 1}, "w")
            active = await next_event(stream)
            assert (active.data["state"], active.data["ids"]) == ("active", [sent.id])
    await wait_until(lambda: hub.subscribers == 0, message="subscription released")


async def test_a_client_that_leaves_releases_its_subscription(
        live_url: str, app: Starlette, db: Database) -> None:
    hub = app.state.ctx.hub
    job_id = (await core.send(db, "work")).id
    async with httpx.AsyncClient(base_url=live_url, headers=WRITER, timeout=TIMEOUT) as http:
        async with http.stream("GET", f"/jobs/{job_id}/events") as response:
            await next_event(events(response))
            assert hub.subscribers == 1
    await wait_until(lambda: hub.subscribers == 0, message="subscription released")
