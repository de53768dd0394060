"""The numbers behind the charts over HTTP: throughput, queue depth and fleet load per
bucket, and a nightly run's progress with its time line."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import httpx

from analytics import breakers, fanout, runs, user_roles
from analytics.models import BreakerOpening
from shared import queue
from shared.db import Database
from tests.integration.api.test_analytics import finished_night
from tests.support import register_worker


async def test_throughput_per_queue_and_outcome(reader: httpx.AsyncClient, db: Database
                                                ) -> None:
    await queue.send_many(db, [queue.JobSpec.of("q") for _ in range(4)])
    jobs = await queue.fetch(db, {"q": 4}, "w1")
    await queue.complete_many(db, [(j.id, None) for j in jobs[:3]])
    await queue.fail(db, jobs[3].id, "boom", retry=False)

    answer = await reader.get("/stats/throughput", params={"hours": 1})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["step_seconds"] == 60 and len(body["at"]) in (60, 61)
    [q] = body["queues"]
    assert q["queue"] == "q" and len(q["completed"]) == len(body["at"])
    assert (sum(q["completed"]), sum(q["failed"]), sum(q["cancelled"])) == (3, 1, 0)
    assert {k: q["totals"][k] for k in ("completed", "failed", "cancelled")} == {
        "completed": 3, "failed": 1, "cancelled": 0}
    assert q["totals"]["run_p95_seconds"] is not None

    other = (await reader.get("/stats/throughput", params={"queue": "other"})).json()
    assert [(o["queue"], sum(o["completed"])) for o in other["queues"]] == [("other", 0)]
    past = (await reader.get("/stats/throughput",
                             params={"until": "2020-01-01T00:00:00Z", "hours": 744})).json()
    assert past["queues"] == [] and past["step_seconds"] == 21600


async def test_queue_depth_and_fleet_load_from_the_samples(
    reader: httpx.AsyncClient, db: Database,
) -> None:
    await queue.send_many(db, [queue.JobSpec.of("q") for _ in range(3)])
    await queue.fetch(db, {"q": 1}, "w1")
    await register_worker(db, "w1", {"q": 8})
    await queue.record_samples(db, seen_within=60)

    depth = (await reader.get("/stats/queue-depth", params={"hours": 1})).json()
    [q] = depth["queues"]
    filled = [i for i, v in enumerate(q["waiting"]) if v is not None]
    assert len(filled) == 1 and q["waiting"][filled[0]] == 2
    assert q["active"][filled[0]] == 1 and q["oldest_waiting_seconds"][filled[0]] >= 0
    fleet = (await reader.get("/stats/fleet", params={"hours": 1})).json()
    [i] = [i for i, v in enumerate(fleet["slots"]) if v is not None]
    assert i == filled[0]
    assert (fleet["workers"][i], fleet["slots"][i], fleet["busy"][i]) == (1, 8, 1)
    assert fleet["slots"].count(None) == len(fleet["at"]) - 1


async def test_bad_ranges_are_400(reader: httpx.AsyncClient,
                                  anonymous: httpx.AsyncClient) -> None:
    for path, params in [("/stats/throughput", {"hours": "0"}),
                         ("/stats/throughput", {"hours": "745"}),
                         ("/stats/queue-depth", {"until": "yesterday"}),
                         ("/stats/fleet", {"until": "1969-12-31T00:00:00Z"}),
                         ("/stats/throughput", {"queue": "Not A Queue"})]:
        answer = await reader.get(path, params=params)
        assert (answer.status_code, answer.json()["code"]) == (400, "invalid_parameter"), (
            path, params)
    assert (await anonymous.get("/stats/fleet")).status_code == 401


async def test_a_finished_nights_progress_and_time_line(
    reader: httpx.AsyncClient, db: Database,
) -> None:
    await user_roles.seed(db, 5)
    await finished_night(db, date(2026, 3, 1), {2, 3})
    run = await runs.get(db, date(2026, 3, 1))
    assert run.finished_at is not None
    during = run.started_at + (run.finished_at - run.started_at) / 2
    await breakers.record(db, "w1", [BreakerOpening("assessment", during)])

    answer = await reader.get("/nightly-runs/2026-03-01/progress")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {k: body[k] for k in ("state", "total", "done", "complete", "partial", "failed",
                                 "cancelled", "waiting", "active", "percent")} == {
        "state": "finished", "total": 5, "done": 5, "complete": 2, "partial": 2,
        "failed": 1, "cancelled": 0, "waiting": 0, "active": 0, "percent": 100.0}
    assert body["source_failures"] == {"assessment": 2}
    assert body["expected_end"] is None and body["rate_per_minute"] > 0
    timeline = body["timeline"]
    assert (sum(timeline["completed"]), sum(timeline["failed"])) == (4, 1)
    assert len(timeline["completed"]) == len(timeline["at"])
    [opening] = body["breaker_openings"]
    assert (opening["source"], opening["worker_id"], opening["after_probe"]) == (
        "assessment", "w1", False)


async def test_a_running_nights_progress_and_expected_end(
    reader: httpx.AsyncClient, db: Database,
) -> None:
    await user_roles.seed(db, 10)
    await fanout.fan_out(db, date(2026, 3, 2), chunk=100)
    body = (await reader.get("/nightly-runs/2026-03-02/progress")).json()
    assert (body["state"], body["total"], body["done"], body["waiting"]) == (
        "running", 10, 0, 10)
    assert body["expected_end"] is None  # nothing has ended: no rate yet

    jobs = await queue.fetch(db, {fanout.COLLECT_QUEUE: 4}, "w1")
    await queue.complete_many(db, [(j.id, None) for j in jobs])
    body = (await reader.get("/nightly-runs/2026-03-02/progress")).json()
    assert (body["done"], body["complete"], body["waiting"], body["percent"]) == (
        4, 4, 6, 40.0)
    assert body["rate_per_minute"] > 0
    expected = datetime.fromisoformat(body["expected_end"])
    started = datetime.fromisoformat(body["started_at"])
    assert started < expected < started + timedelta(days=1)
    assert sum(body["timeline"]["completed"]) == 4

    missing = await reader.get("/nightly-runs/2026-03-09/progress")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (await reader.get("/nightly-runs/2026-02-30/progress")).status_code == 404
