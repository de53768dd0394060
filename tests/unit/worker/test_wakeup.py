"""When the worker fetches: notifications, timers, drained queues, polls (no database)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from worker.wakeup import FIRST_RECHECK, Wakeup


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def due_now(wakeup: Wakeup) -> set[str]:
    """The due queues, without waiting for any timer."""
    try:
        async with asyncio.timeout(0.05):
            return await wakeup.wait()
    except TimeoutError:
        return set()


async def test_every_queue_is_due_at_start_then_drained_queues_stay_quiet() -> None:
    clock = Clock()
    wakeup = Wakeup(["a", "b"], poll_seconds=60, clock=clock)
    assert await due_now(wakeup) == {"a", "b"}
    wakeup.fetched({"a": 5, "b": 5}, {"a": 0, "b": 3})
    wakeup.slot_freed("a")  # drained: a freed slot is no reason to ask again
    wakeup.slot_freed("b")  # got jobs last time: there may be more
    assert await due_now(wakeup) == {"b"}


async def test_a_notification_makes_its_queue_due_and_ignores_other_queues() -> None:
    clock = Clock()
    wakeup = Wakeup(["a"], poll_seconds=60, clock=clock)
    await due_now(wakeup)
    wakeup.fetched({"a": 5}, {})
    wakeup.notified("other", None)
    assert await due_now(wakeup) == set()
    wakeup.notified("a", clock.now)
    assert await due_now(wakeup) == {"a"}


async def test_a_future_start_arms_a_timer_and_an_earlier_one_re_arms_it() -> None:
    clock = Clock()
    wakeup = Wakeup(["a"], poll_seconds=600, clock=clock)
    await due_now(wakeup)
    wakeup.fetched({"a": 5}, {})
    wakeup.notified("a", clock.now + 100)
    wakeup.notified("a", clock.now + 300)  # later: keeps the earlier timer
    assert wakeup.timers() == {"a": clock.now + 100}
    wakeup.arm(["a"], at(clock.now + 50))
    assert wakeup.timers() == {"a": clock.now + 50}
    assert await due_now(wakeup) == set()
    clock.now += 50
    assert await due_now(wakeup) == {"a"}
    assert wakeup.timers() == {}


async def test_the_wait_ends_when_the_timer_is_due() -> None:
    wakeup = Wakeup(["a"], poll_seconds=600)
    await due_now(wakeup)
    wakeup.fetched({"a": 1}, {})
    wakeup.arm(["a"], datetime.now(UTC))  # past: re-checked after the first back-off
    assert await asyncio.wait_for(wakeup.wait(), 5) == {"a"}


async def test_a_past_start_that_gave_nothing_backs_off_up_to_the_poll_interval() -> None:
    clock = Clock()
    wakeup = Wakeup(["a"], poll_seconds=1.0, clock=clock)
    delays = []
    for _ in range(6):
        wakeup.arm(["a"], at(clock.now - 1))
        delays.append(round(wakeup.timers()["a"] - clock.now, 3))
        clock.now = wakeup.timers()["a"]
        await due_now(wakeup)
        wakeup.fetched({"a": 1}, {})
    assert delays == [FIRST_RECHECK, 0.2, 0.4, 0.8, 1.0, 1.0]
    wakeup.fetched({"a": 1}, {"a": 1})  # handed out at last: back-off forgotten
    assert wakeup.recheck_delay("a") == 0.0


async def test_the_next_start_is_not_asked_again_for_queues_known_empty() -> None:
    wakeup = Wakeup(["a", "b"], poll_seconds=60)
    assert wakeup.unknown_next_start(["a", "b"]) == ["a", "b"]
    wakeup.arm(["a", "b"], None)
    assert wakeup.unknown_next_start(["a", "b"]) == []
    wakeup.notified("a", None)
    assert wakeup.unknown_next_start(["a", "b"]) == ["a"]
    wakeup.connected()  # notifications may have been missed: nothing is known any more
    assert wakeup.unknown_next_start(["a", "b"]) == ["a", "b"]
    polling = Wakeup(["a"], poll_seconds=60, trust_notifications=False)
    polling.arm(["a"], None)
    assert polling.unknown_next_start(["a"]) == ["a"]


async def test_the_safety_poll_makes_a_queue_due_after_a_quiet_interval() -> None:
    clock = Clock()
    wakeup = Wakeup(["a", "b"], poll_seconds=60, clock=clock)
    await due_now(wakeup)
    wakeup.fetched({"a": 1, "b": 1}, {})
    clock.now += 35
    wakeup.fetched({"b": 1}, {})
    clock.now += 25
    assert await due_now(wakeup) == {"a"}  # b, fetched 25 s ago, is not half-way yet
    clock.now += 34
    assert await due_now(wakeup) == set()
    clock.now += 1
    assert await due_now(wakeup) == {"a", "b"}  # b's poll; a, 35 s on, comes along


async def test_the_safety_poll_takes_along_queues_half_way_to_their_own() -> None:
    clock = Clock()
    wakeup = Wakeup(["a", "b"], poll_seconds=60, clock=clock)
    await due_now(wakeup)
    wakeup.fetched({"a": 1, "b": 1}, {})
    clock.now += 30
    wakeup.fetched({"b": 1}, {})
    clock.now += 30
    assert await due_now(wakeup) == {"a", "b"}  # one statement for both
    clock.now += 59
    assert await due_now(wakeup) == set()
    clock.now += 1
    assert await due_now(wakeup) == {"a", "b"}


async def test_reported_results_make_a_drained_queue_due_and_stop_ends_the_wait() -> None:
    wakeup = Wakeup(["a"], poll_seconds=60)
    await due_now(wakeup)
    wakeup.fetched({"a": 3}, {})
    wakeup.reported("a")  # a fleet-wide cap may have room now
    assert await due_now(wakeup) == {"a"}
    waiter = asyncio.create_task(wakeup.wait())
    await asyncio.sleep(0)
    wakeup.stop()
    assert await asyncio.wait_for(waiter, 5) == set()
    assert wakeup.stopped
