"""The client without a server: errors by code, Retry-After, retries, the Job shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

import ms8_client
from api import wire
from ms8_client import errors, http
from ms8_client.local import LocalJobQueue
from ms8_client.protocol import JOB_FIELDS, Job
from ms8_client.retrying import RetryPolicy, retry_after


def test_the_client_job_has_the_fields_of_the_api_job() -> None:
    assert JOB_FIELDS == wire.JOB_FIELDS


def test_a_job_is_read_from_json_with_its_times_and_unknown_fields_ignored() -> None:
    body = dict.fromkeys(JOB_FIELDS)
    body.update(id=7, queue="q", state="completed", created_at="2030-01-02T03:04:05.123Z",
                start_after="2030-01-02T03:04:05Z", output={"n": 1}, brand_new_field=True)
    job = Job.from_json(body)
    assert (job.id, job.finished, job.output) == (7, True, {"n": 1})
    assert job.created_at == datetime(2030, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert job.news_since(None) and not job.news_since(job)


@pytest.mark.parametrize(("status", "body", "kind", "field"), [
    (422, {"code": "invalid_body", "message": "priority: must be at most 1000",
           "field": "priority"}, errors.InvalidInput, "priority"),
    (404, {"code": "not_found", "message": "job 9 does not exist"}, errors.NotFound, None),
    (409, {"code": "invalid_state", "message": "it is completed"}, errors.InvalidState, None),
    (409, {"code": "idempotency_key_reused", "message": "used", "field": "Idempotency-Key"},
     errors.IdempotencyKeyReused, "Idempotency-Key"),
    (401, {"code": "unauthorized", "message": "no key"}, errors.Unauthorized, None),
    (403, {"code": "forbidden", "message": "needs write"}, errors.Forbidden, None),
    (503, {"code": "database_unavailable", "message": "retry"}, errors.Unavailable, None),
    (500, {"code": "internal_error", "message": "see log"}, errors.ServerError, None),
    (418, {"code": "a_code_of_tomorrow", "message": "?"}, errors.JobQueueError, None),
])
def test_api_errors_map_to_exceptions_by_code(status: int, body: dict[str, str],
                                              kind: type[Exception], field: str | None) -> None:
    error = errors.from_reply(status, body)
    assert type(error) is kind
    assert (error.code, error.message, error.field, error.status) == (
        body["code"], body["message"], field, status)


def test_a_reply_that_is_not_an_api_error_maps_by_status() -> None:
    error = errors.from_reply(502, None, "<html> Bad   gateway </html>")
    assert isinstance(error, errors.Unavailable)
    assert (error.code, str(error)) == ("http_502", "HTTP 502: <html> Bad gateway </html>")


def test_retry_after_in_seconds_or_as_a_date() -> None:
    def reply(value: str | None) -> httpx.Response:
        return httpx.Response(503, headers={} if value is None else {"Retry-After": value})

    assert retry_after(reply("7")) == 7
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < (retry_after(reply(later)) or 0) <= 120
    assert retry_after(reply("soon")) is None and retry_after(reply(None)) is None
    policy = RetryPolicy(retries=3, first_delay=1, max_wait=10)
    assert policy.delay(0, reply("3")) == 3
    assert policy.delay(0, reply("3600")) == 10  # bounded
    assert 0.8 <= policy.delay(0) <= 1.2 and 3.2 <= policy.delay(2) <= 4.8


class FlakyApi:
    """A transport answering 503 (with Retry-After) ``failures`` times, then 201."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self.requests) <= self.failures:
            return httpx.Response(503, headers={"Retry-After": "4"},
                                  json={"code": "database_unavailable", "message": "down"})
        return httpx.Response(201, json={"id": 5, "created": True})


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr(http.asyncio, "sleep", sleep)
    return delays


async def test_a_503_is_retried_after_its_retry_after_with_the_same_idempotency_key(
        slept: list[float]) -> None:
    api = FlakyApi(failures=2)
    async with ms8_client.HttpJobQueue("http://api", api_key="k" * 20,
                                       transport=httpx.MockTransport(api)) as jobs:
        sent = await jobs.add("q", {"a": 1}, priority=5)
    assert sent == ms8_client.Sent(5, True)
    assert slept == [4, 4]
    keys = {r.headers["Idempotency-Key"] for r in api.requests}
    assert len(api.requests) == 3 and len(keys) == 1
    assert api.requests[0].headers["Authorization"] == "Bearer " + "k" * 20


async def test_retries_are_bounded(slept: list[float]) -> None:
    api = FlakyApi(failures=100)
    policy = RetryPolicy(retries=2, max_wait=1)
    async with ms8_client.HttpJobQueue("http://api", retry=policy,
                                       transport=httpx.MockTransport(api)) as jobs:
        with pytest.raises(ms8_client.Unavailable, match="down"):
            await jobs.add("q")
    assert len(api.requests) == 3 and slept == [1, 1]


async def test_bad_ids_and_naive_datetimes_are_refused_before_any_request() -> None:
    api = FlakyApi(failures=0)
    async with ms8_client.HttpJobQueue("http://api", transport=httpx.MockTransport(api)) as jobs:
        with pytest.raises(ms8_client.InvalidInput, match="id"):
            await jobs.get_status("../queues")  # type: ignore[arg-type]
        with pytest.raises(ms8_client.InvalidInput, match="start_after"):
            await jobs.add("q", start_after=datetime(2030, 1, 1))
    assert api.requests == []


async def test_both_implementations_are_job_queues() -> None:
    async with ms8_client.HttpJobQueue("http://api") as over_http:
        assert isinstance(over_http, ms8_client.JobQueue)
    assert isinstance(LocalJobQueue(None), ms8_client.JobQueue)  # type: ignore[arg-type]
