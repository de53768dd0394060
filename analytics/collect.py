"""Collecting one user-role's analytics: every source at once, each on its own terms.

Per source and request (see the source contract in the README):

    breaker refuses?  ──yes──► missing "circuit open" (no request, no wait)
    wait for one of the source's slots (its concurrency limit in this process; waiters
    go in by the job's priority, so a fresh-data request passes the night's)
    GET {base_url}/user-roles/{id}, bounded by the source's timeout from connect to
    the last byte (a source that drips bytes cannot hold a job past it)
        2xx, a JSON object within max_bytes   → data
        5xx, 429, timeout, connection error   → transient: one quick retry, then missing
        other 4xx                             → missing, not retried (the source is up)
        not JSON, not an object, too large    → missing, not retried (the source is broken)
        a Content-Length not in ASCII digits  → missing (never read as a length)

Transient and broken answers count as failures for the breaker; a 4xx counts as the
source answering. Cancellation (the job was cancelled, timed out, or the worker stops)
is never swallowed: it leaves the breaker without a verdict.

One ``Collector`` lives per worker process, so its breakers and limits are shared by all
the jobs the process runs; its counters feed the worker's metrics, and each opening of a
breaker is kept (``take_openings``) until the job that saw it records it in the database
(``analytics.breakers``), for the nightly run's time line. Requests go out on an
``aiohttp.ClientSession`` (the worker's shared one): a night is 120,000 of them, and
httpx's pool costs 15-30x the CPU per request when a hundred are in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from analytics.breaker import PROBE, Breaker
from analytics.limiter import PriorityLimiter
from analytics.models import BreakerOpening, Missing
from analytics.settings import AnalyticsSettings, Source
from shared import numerals

HEADERS = {"Accept": "application/json"}
READ_CHUNK = 64 * 1024
# Openings kept while they cannot be recorded (the database is away): the oldest go first.
MAX_PENDING_OPENINGS = 1000


@dataclass(frozen=True, slots=True)
class SourceResult:
    source: str
    data: dict[str, Any] | None
    reason: str | None  # why data is missing
    seconds: float

    @property
    def ok(self) -> bool:
        return self.data is not None


@dataclass(frozen=True, slots=True)
class Collection:
    """What every source gave for one user-role."""

    results: tuple[SourceResult, ...]
    duration_ms: int

    @property
    def data(self) -> dict[str, Any]:
        return {r.source: r.data for r in self.results if r.data is not None}

    @property
    def missing(self) -> list[Missing]:
        return [Missing(r.source, r.reason or "unknown") for r in self.results if not r.ok]

    @property
    def all_failed(self) -> bool:
        return not any(r.ok for r in self.results)


OnSource = Callable[[SourceResult, int, int], Awaitable[object]]


class _Failed(Exception):
    """One attempt failed: ``kind`` labels the metric, ``reason`` goes into the snapshot."""

    def __init__(self, kind: str, reason: str, *, transient: bool, source_is_up: bool = False
                 ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.transient = transient
        self.source_is_up = source_is_up


class Collector:
    def __init__(
        self, settings: AnalyticsSettings, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.sources = settings.sources
        self.breakers = {s.name: Breaker(s.breaker_failures, s.breaker_cooldown, clock)
                         for s in self.sources}
        self._slots = {s.name: PriorityLimiter(s.concurrency) for s in self.sources}
        # The deadline of one attempt, from waiting for a connection to the last byte.
        self._timeouts = {s.name: aiohttp.ClientTimeout(total=s.timeout) for s in self.sources}
        # (source, kind) → failed requests, and refusals by an open breaker.
        self.failures: Counter[tuple[str, str]] = Counter()
        self._openings: list[BreakerOpening] = []

    def take_openings(self) -> list[BreakerOpening]:
        """The breaker openings not yet handed out, oldest first (and forget them)."""
        taken, self._openings = self._openings, []
        return taken

    def give_back_openings(self, openings: list[BreakerOpening]) -> None:
        """Openings that could not be recorded: kept for the next try, within a bound."""
        self._openings = [*openings, *self._openings][-MAX_PENDING_OPENINGS:]

    def _note_failure(self, source: Source, breaker: Breaker, ticket: str) -> None:
        opened = breaker.opened
        breaker.failure(ticket)
        if breaker.opened != opened:
            self._openings.append(BreakerOpening(
                source.name, datetime.now(UTC), after_probe=ticket == PROBE))
            del self._openings[:-MAX_PENDING_OPENINGS]

    async def collect(
        self, http: aiohttp.ClientSession, user_role_id: int, on_source: OnSource | None = None,
        *, priority: int = 0,
    ) -> Collection:
        """Ask every source at once; ``on_source(result, done, total)`` as each one ends,
        one call at a time, so reports written as they come never go backwards.
        ``priority`` (the job's) orders the waits for a source's slots."""
        started = time.monotonic()
        done = 0
        total = len(self.sources)
        reporting = asyncio.Lock()

        async def one(source: Source) -> SourceResult:
            nonlocal done
            result = await self._source(http, source, user_role_id, priority)
            async with reporting:
                done += 1
                if on_source is not None:
                    await on_source(result, done, total)
            return result

        results = await asyncio.gather(*(one(s) for s in self.sources))
        return Collection(tuple(results), round((time.monotonic() - started) * 1000))

    async def _source(self, http: aiohttp.ClientSession, source: Source, user_role_id: int,
                      priority: int) -> SourceResult:
        started = time.monotonic()
        breaker = self.breakers[source.name]
        reason: str | None = None  # of the first attempt, when a retry is refused
        for attempt in (1, 2):
            if attempt == 2:
                await asyncio.sleep(self.settings.retry_delay)
            if breaker.refuses():  # before queueing for a slot: an outage costs no wait
                return self._refused(source, started, reason)
            async with self._slots[source.name].slot(priority):
                ticket = breaker.allow()  # it may have opened while this call waited
                if ticket is None:
                    return self._refused(source, started, reason)
                try:
                    data = await self._get(http, source, source.url(user_role_id))
                except _Failed as failed:
                    if failed.source_is_up:
                        breaker.success(ticket)
                    else:
                        self._note_failure(source, breaker, ticket)
                        self.failures[source.name, failed.kind] += 1
                    reason = failed.reason
                    if failed.transient:
                        continue
                    break
                except BaseException:
                    breaker.abandon(ticket)
                    raise
                breaker.success(ticket)
                return SourceResult(source.name, data, None, time.monotonic() - started)
        return SourceResult(source.name, None, reason, time.monotonic() - started)

    def _refused(self, source: Source, started: float, reason: str | None) -> SourceResult:
        self.failures[source.name, "circuit-open"] += 1
        return SourceResult(source.name, None, reason or "circuit open",
                            time.monotonic() - started)

    async def _get(self, http: aiohttp.ClientSession, source: Source, url: str
                   ) -> dict[str, Any]:
        """One attempt; raises ``_Failed`` saying what went wrong.

        The total timeout bounds the whole attempt, body included: a source that drips
        bytes never trips a read timeout. Leaving the response before its body is read
        (too large) closes its connection instead of reusing it."""
        limit = self.settings.max_bytes
        try:
            async with http.get(url, headers=HEADERS, timeout=self._timeouts[source.name],
                                allow_redirects=False) as response:
                status = response.status
                if status >= 500 or status == 429:
                    raise _Failed("http-5xx" if status >= 500 else "http-429",
                                  f"http {status}", transient=True)
                if not 200 <= status < 300:
                    raise _Failed("http-4xx", f"http {status}", transient=False,
                                  source_is_up=True)
                declared = _declared_length(response)
                if declared is not None and declared > limit:
                    raise _Failed("too-large", f"answer larger than {limit} bytes",
                                  transient=False)
                if declared is not None:  # the common case: read at once, length known
                    body: bytes | bytearray = await response.read()
                else:
                    body = await _read_at_most(response, limit)
        except TimeoutError:
            raise _Failed("timeout", f"timeout after {source.timeout:g} s",
                          transient=True) from None
        except aiohttp.ClientError as error:
            raise _Failed("connection", f"connection error: {_connection_error(error)}",
                          transient=True) from None
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _Failed("invalid", "answer is not JSON", transient=False) from None
        if not isinstance(value, dict):
            raise _Failed("invalid", "answer is not a JSON object", transient=False)
        return value


def _declared_length(response: aiohttp.ClientResponse) -> int | None:
    """The body length the source declared, read as written (``int()`` would take
    ``"١٠"`` or ``"+10"`` for 10); None when it declared none."""
    text = response.headers.get("Content-Length")
    if text is None:
        return None
    try:
        return numerals.whole(text.strip(" \t"))
    except ValueError:
        raise _Failed("invalid", "answer with a malformed Content-Length",
                      transient=False) from None


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytearray:
    """A body of unknown length, refused as soon as it passes ``limit`` bytes."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(READ_CHUNK):
        body += chunk
        if len(body) > limit:
            raise _Failed("too-large", f"answer larger than {limit} bytes", transient=False)
    return body


def _connection_error(error: aiohttp.ClientError) -> str:
    """What went wrong, in words that do not depend on the HTTP library."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return "cannot connect"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "disconnected"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "answer cut short"
    if isinstance(error, aiohttp.ClientResponseError):
        return "malformed answer"
    return type(error).__name__
