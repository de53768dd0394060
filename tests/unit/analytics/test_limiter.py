"""The priority limiter: never more holders than its limit, waiters in by priority then
arrival, and a cancelled waiter (or one cancelled as it was let in) loses no slot."""

from __future__ import annotations

import asyncio

import pytest

from analytics.limiter import PriorityLimiter


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_waiters_go_in_by_priority_then_arrival() -> None:
    limiter = PriorityLimiter(1)
    order: list[str] = []
    gate = asyncio.Event()

    async def take(name: str, priority: int) -> None:
        async with limiter.slot(priority):
            order.append(name)
            await gate.wait()

    holder = asyncio.create_task(take("holder", 0))
    await settle()
    tasks = [asyncio.create_task(take(name, priority)) for name, priority in
             [("batch-1", 0), ("batch-2", 0), ("fresh", 100), ("batch-3", 0), ("low", -5)]]
    await settle()
    assert order == ["holder"] and limiter.waiting == 5
    gate.set()
    await asyncio.gather(holder, *tasks)
    assert order == ["holder", "fresh", "batch-1", "batch-2", "batch-3", "low"]


async def test_never_more_holders_than_the_limit() -> None:
    limiter = PriorityLimiter(3)
    holding = most = 0

    async def take(priority: int) -> None:
        nonlocal holding, most
        async with limiter.slot(priority):
            holding += 1
            most = max(most, holding)
            await asyncio.sleep(0)
            holding -= 1

    await asyncio.gather(*(take(i % 7) for i in range(100)))
    assert most == 3
    assert limiter.waiting == 0
    # Every slot is free again: three holders at once without waiting.
    for _ in range(3):
        await asyncio.wait_for(limiter.acquire(), 0.01)


async def test_a_cancelled_waiter_leaves_the_line() -> None:
    limiter = PriorityLimiter(1)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire(5))
    await settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.waiting == 0
    limiter.release()
    await asyncio.wait_for(limiter.acquire(), 0.01)


async def test_a_waiter_cancelled_as_it_is_let_in_hands_the_slot_on() -> None:
    limiter = PriorityLimiter(1)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire(1))
    second = asyncio.create_task(limiter.acquire(0))
    await settle()
    limiter.release()  # granted to first, which is cancelled before it runs
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 0.1)
    assert limiter.waiting == 0


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        PriorityLimiter(0)
