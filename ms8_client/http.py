"""``JobQueue`` over the HTTP API, on httpx. It imports nothing of the server.

- Every call sends the API key (``Authorization: Bearer``) and is retried on 502/503/504
  and on a request that got no answer, honouring ``Retry-After``, a bounded number of
  times (``RetryPolicy``); then it raises ``Unavailable``.
- ``add`` always sends an ``Idempotency-Key`` (the caller's, or a fresh one), so that a
  retried send never sends twice.
- ``progress`` and ``wait_for_end`` follow the job's event stream (``GET /jobs/{id}/events``),
  re-opening it when it breaks; when streams cannot be had (a proxy that buffers them,
  or they keep breaking) they poll ``GET /jobs/{id}`` every ``poll_interval`` instead.
- API errors become the exceptions of ``ms8_client.errors``, chosen by their ``code``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from datetime import datetime
from itertools import count
from types import TracebackType
from typing import Any, Unpack

import httpx

from ms8_client import errors
from ms8_client.protocol import Job, SendOptions, Sent
from ms8_client.retrying import RETRY_STATUSES, RetryPolicy
from ms8_client.sse import events

log = logging.getLogger("ms8_client")
IDEMPOTENCY_HEADER = "Idempotency-Key"


class HttpJobQueue:
    """The queue of the API at ``base_url`` (e.g. ``https://jobs.internal``)."""

    def __init__(
        self, base_url: str, *, api_key: str | None = None, timeout: float = 30.0,
        retry: RetryPolicy | None = None, poll_interval: float = 1.0,
        use_event_stream: bool = True, headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        sent_headers = {"Accept": "application/json", "User-Agent": "ms8-client",
                        **(headers or {})}
        if api_key:
            sent_headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=sent_headers,
                                       timeout=timeout, transport=transport)
        self._retry = retry or RetryPolicy()
        self._poll_interval = poll_interval
        self._use_event_stream = use_event_stream

    async def __aenter__(self) -> HttpJobQueue:
        return self

    async def __aexit__(self, _type: type[BaseException] | None, _error: BaseException | None,
                        _tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ the interface

    async def add(self, queue: str, data: Any = None, *, idempotency_key: str | None = None,
                  **options: Unpack[SendOptions]) -> Sent:
        body: dict[str, Any] = {"queue": queue, **_wire(options)}
        if data is not None:
            body["data"] = data
        key = idempotency_key or uuid.uuid4().hex
        response = await self._call("POST", "/jobs", body=body,
                                    headers={IDEMPOTENCY_HEADER: key})
        reply = response.json()
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        return Sent(int(reply["id"]), bool(reply["created"]) and not replayed)

    async def get_status(self, job_id: int) -> Job:
        response = await self._call("GET", f"/jobs/{_job_id(job_id)}")
        return Job.from_json(response.json())

    async def cancel(self, job_id: int) -> Job:
        response = await self._call("POST", f"/jobs/{_job_id(job_id)}/cancel")
        return Job.from_json(response.json())

    async def wait_for_end(self, job_id: int, timeout: float | None = None) -> Job:
        last: Job | None = None
        try:
            async with asyncio.timeout(timeout), aclosing(self.progress(job_id)) as changes:
                async for job in changes:
                    last = job
        except TimeoutError:
            state = "" if last is None else f" (still {last.state})"
            raise TimeoutError(f"job {job_id} has not ended after {timeout} s{state}") from None
        assert last is not None and last.finished
        return last

    async def progress(self, job_id: int) -> AsyncGenerator[Job, None]:
        job_id = _job_id(job_id)
        last: Job | None = None
        if self._use_event_stream:
            async with aclosing(self._streamed(job_id)) as streamed:
                async for job in streamed:
                    if job.news_since(last):
                        last = job
                        yield job
            if last is not None and last.finished:
                return
        while True:
            job = await self.get_status(job_id)
            if job.news_since(last):
                last = job
                yield job
            if job.finished:
                return
            await asyncio.sleep(self._poll_interval)

    # ------------------------------------------------------------------ transport

    async def _call(self, method: str, path: str, *, body: Any = None,
                    headers: Mapping[str, str] | None = None) -> httpx.Response:
        """One API call, retried as the module says; a successful reply."""
        for attempt in count():
            try:
                response = await self._http.request(
                    method, path, json=body, headers=headers)
            except httpx.TransportError as error:
                if attempt >= self._retry.retries:
                    raise errors.Unavailable(f"{method} {path}: no answer ({error!r})",
                                             code="unreachable") from error
                delay = self._retry.delay(attempt)
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRY_STATUSES or attempt >= self._retry.retries:
                    raise _error(response)
                delay = self._retry.delay(attempt, response)
            log.info("retrying %s %s in %.1f s", method, path, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _streamed(self, job_id: int) -> AsyncGenerator[Job, None]:
        """The job's event stream, re-opened when it breaks; returns without the finished
        job when streams cannot be had (the caller polls then)."""
        path = f"/jobs/{job_id}/events"
        failures = 0
        while True:
            response: httpx.Response | None = None
            try:
                async with self._http.stream(
                        "GET", path, headers={"Accept": "text/event-stream"}) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        if response.status_code not in RETRY_STATUSES:
                            raise _error(response)
                    elif not response.headers.get("content-type", "").startswith(
                            "text/event-stream"):
                        log.warning("%s is not an event stream; polling instead", path)
                        return
                    else:
                        async for event in events(response):
                            if event.name == "job":
                                failures = 0
                                yield Job.from_json(json.loads(event.data))
                            elif event.name == "gone":
                                raise errors.NotFound(f"job {job_id} was deleted",
                                                      code="not_found")
                            elif event.name == "end":
                                return
            except httpx.TransportError as error:
                log.info("event stream of job %s broke: %r", job_id, error)
            failures += 1
            if failures > self._retry.retries:
                log.warning("event stream of job %s keeps failing; polling instead", job_id)
                return
            ok = response is not None and response.status_code < 400
            await asyncio.sleep(self._retry.delay(failures - 1, None if ok else response))


def _error(response: httpx.Response) -> errors.JobQueueError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return errors.from_reply(response.status_code, body, response.text)


def _job_id(job_id: Any) -> int:
    if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id < 1:
        raise errors.InvalidInput(f"a job id is a positive whole number, got {job_id!r}",
                                  code="invalid_parameter", field="id")
    return job_id


def _wire(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options as the API's ``JobSpec`` fields (datetimes as RFC 3339 text)."""
    out = dict(options)
    start_after = out.get("start_after")
    if isinstance(start_after, datetime):
        if start_after.utcoffset() is None:
            raise errors.InvalidInput("must carry a timezone (naive datetimes are ambiguous)",
                                      code="invalid_body", field="start_after")
        out["start_after"] = start_after.isoformat()
    return out
