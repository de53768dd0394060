"""The collector against a real HTTP server: timeouts, the quick retry, limits, the breaker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from analytics.breaker import OPEN
from analytics.collect import Collector, SourceResult
from analytics.models import Missing
from analytics.settings import AnalyticsSettings
from tests.integration.analytics.sources import FakeSources, fake_sources
from tests.support import wait_until

NAMES = ("a", "b", "c")


@pytest_asyncio.fixture
async def sources() -> AsyncIterator[FakeSources]:
    async with fake_sources() as server:
        yield server


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def collector(sources: FakeSources, **env: str) -> Collector:
    urls = ",".join(f"{name}={sources.base_url(name)}" for name in NAMES)
    return Collector(AnalyticsSettings.from_env({
        "MS8_SOURCES": urls, "MS8_SOURCE_TIMEOUT": "2", "MS8_SOURCE_RETRY_DELAY": "0.01",
        **env}))


async def test_every_source_at_once_into_one_collection(
    sources: FakeSources, http: aiohttp.ClientSession,
) -> None:
    seen: list[tuple[str, int, int]] = []

    async def on_source(result: SourceResult, done: int, total: int) -> None:
        seen.append((result.source, done, total))

    collection = await collector(sources).collect(http, 42, on_source)
    assert collection.data == {name: {"source": name, "user_role_id": 42} for name in NAMES}
    assert collection.missing == [] and not collection.all_failed
    assert sorted(s for s, _, _ in seen) == list(NAMES)
    assert [(d, t) for _, d, t in seen] == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(("mode", "reason", "requests"), [
    ("503", "http 503", 2),                          # transient: one quick retry
    ("hang", "timeout after 0.3 s", 2),
    ("drip", "timeout after 0.3 s", 2),              # bytes keep coming: the deadline ends it
    ("404", "http 404", 1),                          # the source is up: no retry
    ("garbage", "answer is not JSON", 1),
    ("list", "answer is not a JSON object", 1),
    ("huge", "answer larger than 262144 bytes", 1),          # said so by its length
    ("huge-chunked", "answer larger than 262144 bytes", 1),  # found out while reading
    # A length int() reads as the body's ("+17", "١٧"): never taken for one.
    ("signed-length", "connection error: malformed answer", 2),
    ("arabic-length", "connection error: malformed answer", 2),
])
async def test_a_failing_source_is_missing_with_its_reason(
    sources: FakeSources, http: aiohttp.ClientSession, mode: str, reason: str, requests: int,
) -> None:
    sources.modes["b"] = mode
    collection = await collector(sources, MS8_SOURCE_TIMEOUT="0.3").collect(http, 7)
    assert set(collection.data) == {"a", "c"}
    assert collection.missing == [Missing("b", reason)]
    assert sources.requests["b"] == requests


async def test_every_source_failing_is_all_failed(
    sources: FakeSources, http: aiohttp.ClientSession,
) -> None:
    sources.modes.update(dict.fromkeys(NAMES, "503"))
    collection = await collector(sources).collect(http, 7)
    assert collection.all_failed and collection.data == {}
    assert [m.reason for m in collection.missing] == ["http 503"] * 3


async def test_a_connection_refused_is_transient(http: aiohttp.ClientSession) -> None:
    dead = Collector(AnalyticsSettings.from_env({
        "MS8_SOURCES": "a=http://127.0.0.1:9", "MS8_SOURCE_RETRY_DELAY": "0"}))
    collection = await dead.collect(http, 1)
    assert collection.missing == [Missing("a", "connection error: cannot connect")]
    assert dead.failures["a", "connection"] == 2


async def test_the_breaker_opens_and_later_calls_cost_no_request(
    sources: FakeSources, http: aiohttp.ClientSession,
) -> None:
    sources.modes["b"] = "503"
    c = collector(sources, MS8_SOURCE_BREAKER_FAILURES="3",
                  MS8_SOURCE_BREAKER_COOLDOWN="3600")
    results = [await c.collect(http, i) for i in range(20)]
    assert sources.requests["b"] == 3  # 2 attempts, then 1 more: open
    assert c.breakers["b"].state == OPEN and c.breakers["a"].state != OPEN
    # The second one's retry was refused: it keeps the reason of its first attempt.
    assert [r.missing for r in results[:2]] == [[Missing("b", "http 503")]] * 2
    assert [r.missing for r in results[2:]] == [[Missing("b", "circuit open")]] * 18
    assert (c.failures["b", "http-5xx"], c.failures["b", "circuit-open"]) == (3, 19)
    assert all(set(r.data) == {"a", "c"} for r in results)


async def test_a_probe_after_the_cool_down_closes_the_breaker_again(
    sources: FakeSources, http: aiohttp.ClientSession,
) -> None:
    sources.modes["b"] = "503"
    c = collector(sources, MS8_SOURCE_BREAKER_FAILURES="1", MS8_SOURCE_BREAKER_COOLDOWN="0.2")
    await c.collect(http, 1)
    assert c.breakers["b"].state == OPEN
    sources.modes["b"] = "ok"
    await asyncio.sleep(0.25)
    collection = await c.collect(http, 2)
    assert set(collection.data) == set(NAMES)
    assert c.breakers["b"].state == "closed"


async def test_a_hanging_source_opens_the_breaker_after_its_first_timeouts(
    sources: FakeSources, http: aiohttp.ClientSession,
) -> None:
    sources.modes["b"] = "hang"
    c = collector(sources, MS8_SOURCE_TIMEOUT="10,b=0.5", MS8_SOURCE_CONCURRENCY="b=4",
                  MS8_SOURCE_BREAKER_FAILURES="4", MS8_SOURCE_BREAKER_COOLDOWN="3600")
    results = await asyncio.gather(*(c.collect(http, i) for i in range(100)))
    # Four requests hold the source's slots until they time out; each of the first three
    # failures frees a slot for one more request before the fourth opens the breaker.
    # Then everyone else (retries included) is refused at once. On a busy machine a
    # request can time out before the source has even read it, so the source's own
    # count is only bounded from above.
    assert all(set(r.data) == {"a", "c"} for r in results)
    assert {r.missing[0].reason for r in results} == {"timeout after 0.5 s", "circuit open"}
    timed_out = sum(r.missing == [Missing("b", "timeout after 0.5 s")] for r in results)
    assert 4 <= timed_out <= 4 + 3
    assert sources.requests["b"] <= timed_out
    refused = sum(r.missing == [Missing("b", "circuit open")] for r in results)
    assert refused == 100 - timed_out


async def test_requests_to_a_source_stay_within_its_concurrency(
    sources: FakeSources, http: aiohttp.ClientSession,
) -> None:
    sources.modes.update(dict.fromkeys(NAMES, "slow"))
    sources.slow_seconds = 0.05
    c = collector(sources, MS8_SOURCE_CONCURRENCY="5,c=2")
    results = await asyncio.gather(*(c.collect(http, i) for i in range(30)))
    assert all(not r.missing for r in results)
    assert sources.most_in_flight["c"] == 2
    assert sources.most_in_flight["a"] == sources.most_in_flight["b"] == 5


async def test_a_higher_priority_collection_passes_those_waiting_for_a_slot(
    sources: FakeSources, http: aiohttp.ClientSession,
) -> None:
    sources.modes["a"] = "slow"
    sources.slow_seconds = 0.05
    c = collector(sources, MS8_SOURCE_CONCURRENCY="1")
    answered: list[int] = []

    async def on_source(result: SourceResult, done: int, total: int) -> None:
        if result.source == "a" and result.data is not None:
            answered.append(result.data["user_role_id"])

    low = [asyncio.create_task(c.collect(http, i, on_source)) for i in range(1, 9)]
    await wait_until(lambda: sources.in_flight["a"] == 1, message="a request to a")
    fresh = asyncio.create_task(c.collect(http, 100, on_source, priority=100))
    await asyncio.gather(fresh, *low)
    # The one in flight when it came, then the high-priority one, then the others in turn.
    assert answered == [1, 100, *range(2, 9)]


async def test_a_cancelled_collection_leaves_no_probe_hanging(
    sources: FakeSources, http: aiohttp.ClientSession,
) -> None:
    sources.modes["b"] = "503"
    c = collector(sources, MS8_SOURCE_BREAKER_FAILURES="1", MS8_SOURCE_BREAKER_COOLDOWN="0.1")
    await c.collect(http, 1)
    sources.modes["b"] = "hang"
    await asyncio.sleep(0.15)
    task = asyncio.create_task(c.collect(http, 2))
    await asyncio.sleep(0.1)  # the probe is in flight, hanging
    assert c.breakers["b"].state == "half-open"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sources.modes["b"] = "ok"
    assert set((await c.collect(http, 3)).data) == set(NAMES)  # the next call probes
