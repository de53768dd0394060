"""collect-analytics in an in-process worker, against a real HTTP server standing in for
the sources: snapshots, outputs, retries when every source fails, breaker metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from prometheus_client import generate_latest

from analytics import breakers, snapshots, user_roles
from shared import queue
from shared.db import Database
from tests.integration.analytics.sources import FakeSources
from tests.integration.worker.conftest import CollectFrom, StartWorker
from tests.support import wait_until
from worker.context import PermanentError
from worker.handlers import analytics, collectors
from worker.handlers.analytics import collect_input, night_of_job
from worker.metrics import WorkerMetrics

DAY = date(2026, 3, 1)
QUEUES = {"MS8_WORKER_QUEUES": "collect-analytics=20"}


@pytest.fixture
def configured(collect_from: CollectFrom) -> analytics.Collector:
    return collect_from(MS8_SOURCE_TIMEOUT="5,b=0.5", MS8_SOURCE_RETRY_DELAY="0",
                        MS8_SOURCE_BREAKER_FAILURES="3", MS8_SOURCE_BREAKER_COOLDOWN="3600")


async def ended(db: Database, ids: list[int]) -> list[queue.Job] | None:
    jobs = [await queue.get_job(db, i) for i in ids]
    return jobs if all(j.finished for j in jobs) else None


@pytest.mark.usefixtures("configured")
async def test_a_source_down_gives_partial_snapshots_naming_it(
    db: Database, start_worker: StartWorker, sources: FakeSources
) -> None:
    await user_roles.seed(db, 30)
    sources.modes["b"] = "503"
    batch_id, sent = await queue.send_batch(db, [queue.JobSpec.of(
        "collect-analytics", {"user_role_id": i, "day": DAY.isoformat()}) for i in range(1, 31)])
    await start_worker(**QUEUES)
    jobs = await wait_until(lambda: ended(db, [s.id for s in sent]), timeout=30)
    assert {j.state for j in jobs} == {"completed"}
    assert all(j.output["status"] == "partial" for j in jobs)
    assert {j.output["missing"][0]["source"] for j in jobs} == {"b"}
    latest = await snapshots.latest(db, 7)
    assert (latest.status, set(latest.data), latest.batch_id) == ("partial", {"a", "c"}, batch_id)
    assert latest.missing[0].source == "b"
    assert (await snapshots.of_batch(db, batch_id)).source_failures == {"b": 30}
    # The breaker opened after three failures: the rest cost b no request.
    assert sources.requests["b"] <= 3 + 20  # at most one per slot was in flight when it opened
    text = generate_latest(WorkerMetrics(collectors()).registry).decode()
    assert 'ms8_source_breaker_state{source="b"} 2.0' in text
    assert 'ms8_source_breaker_state{source="a"} 0.0' in text
    assert 'ms8_source_failures_total{kind="http-5xx",source="b"}' in text


@pytest.mark.usefixtures("configured")
async def test_every_source_down_retries_then_fails_and_writes_nothing(
    db: Database, start_worker: StartWorker, sources: FakeSources
) -> None:
    await user_roles.seed(db, 1)
    sources.modes.update({"a": "503", "b": "hang", "c": "garbage"})
    sent = await queue.send(db, "collect-analytics", {"user_role_id": 1, "day": "2026-03-01"},
                            retry_limit=2, retry_delay=0.05, retry_backoff=False)
    await start_worker(**QUEUES)
    [job] = await wait_until(lambda: ended(db, [sent.id]), timeout=60)
    assert (job.state, job.attempt) == ("failed", 3)
    # The last attempt's error (by then the breakers of a and b had opened).
    assert "every source failed: a (" in (job.error_message or "")
    with pytest.raises(queue.NotFound):
        await snapshots.latest(db, 1)


async def test_a_breaker_opening_is_recorded_for_the_time_line(
    db: Database, start_worker: StartWorker, sources: FakeSources,
    configured: analytics.Collector,
) -> None:
    await user_roles.seed(db, 30)
    sources.modes["b"] = "503"
    _batch_id, sent = await queue.send_batch(db, [queue.JobSpec.of(
        "collect-analytics", {"user_role_id": i, "day": DAY.isoformat()}) for i in range(1, 31)])
    before = datetime.now(UTC)
    await start_worker(**QUEUES)
    await wait_until(lambda: ended(db, [s.id for s in sent]), timeout=30)
    found = await breakers.openings(db, before, datetime.now(UTC))
    # Three failures in a row opened it; the cool-down (an hour) never ended: once.
    assert [(o.source, o.worker_id, o.after_probe) for o in found] == [("b", "w1", False)]
    assert configured.take_openings() == []  # recorded, so no longer pending


@pytest.mark.usefixtures("configured")
async def test_an_unknown_user_role_is_skipped(
    db: Database, start_worker: StartWorker
) -> None:
    sent = await queue.send(db, "collect-analytics", {"user_role_id": 5, "day": "2026-03-01"})
    await start_worker(**QUEUES)
    [job] = await wait_until(lambda: ended(db, [sent.id]), timeout=30)
    assert (job.state, job.output["status"]) == ("completed", "skipped")


@pytest.mark.parametrize(("data", "message"), [
    ([], "data must be an object"),
    ({"day": "2026-03-01"}, "data.user_role_id must be a positive integer, got None"),
    ({"user_role_id": True, "day": "2026-03-01"}, "positive integer, got True"),
    ({"user_role_id": 3}, "data.day must be a date written YYYY-MM-DD, got None"),
    ({"user_role_id": 3, "day": "03/01/2026"}, "got '03/01/2026'"),
])
def test_bad_job_data_fails_without_retry(data: object, message: str) -> None:
    with pytest.raises(PermanentError) as error:
        collect_input(data)
    assert message in str(error.value)


CREATED = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(("data", "night"), [
    ({"fire_time": "2026-03-01T02:00:00+00:00"}, date(2026, 3, 1)),
    ({"fire_time": "2026-03-01T01:30:00+02:00"}, date(2026, 2, 28)),  # its date in UTC
    ({"night": "2026-02-14", "fire_time": "2026-03-01T02:00:00+00:00"}, date(2026, 2, 14)),
    ({}, date(2026, 3, 2)),  # sent by hand: the night it was sent (on every attempt)
    (None, date(2026, 3, 2)),
])
def test_a_daily_batch_knows_its_night(data: object, night: date) -> None:
    assert night_of_job(data, CREATED)[0] == night


@pytest.mark.parametrize(("data", "message"), [
    ({"night": "yesterday"}, "data.night must be a date written YYYY-MM-DD"),
    ({"fire_time": "soon"}, "data.fire_time must be an RFC 3339 time"),
    ({"fire_time": "2026-03-01T02:00:00"}, "data.fire_time needs a UTC offset"),
])
def test_a_daily_batch_with_a_bad_night_fails_without_retry(data: object, message: str) -> None:
    with pytest.raises(PermanentError) as error:
        night_of_job(data, CREATED)
    assert message in str(error.value)
