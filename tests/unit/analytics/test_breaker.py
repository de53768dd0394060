"""The circuit breaker's state machine, on a clock the test moves."""

from __future__ import annotations

import pytest

from analytics.breaker import CLOSED, HALF_OPEN, OPEN, PASS, PROBE, Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def opened(clock: Clock, failures: int = 3, cooldown: float = 10.0) -> Breaker:
    breaker = Breaker(failures, cooldown, clock)
    for _ in range(failures):
        breaker.failure(breaker.allow() or "")
    assert breaker.state == OPEN
    return breaker


def test_it_opens_after_n_consecutive_failures_only() -> None:
    breaker = Breaker(3, 10.0, Clock())
    for outcome in ("failure", "failure", "success", "failure", "failure"):
        ticket = breaker.allow()
        assert ticket == PASS
        getattr(breaker, outcome)(ticket)
    assert (breaker.state, breaker.consecutive_failures) == (CLOSED, 2)
    breaker.failure(breaker.allow() or "")
    assert (breaker.state, breaker.opened) == (OPEN, 1)


def test_an_open_breaker_refuses_until_its_cool_down_has_passed() -> None:
    clock = Clock()
    breaker = opened(clock)
    assert breaker.refuses() and breaker.allow() is None
    clock.now += 9.9
    assert breaker.refuses() and breaker.allow() is None
    clock.now += 0.1
    assert not breaker.refuses()


def test_one_probe_at_a_time_and_its_success_closes_the_breaker() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 10
    assert breaker.allow() == PROBE
    assert breaker.state == HALF_OPEN
    assert breaker.refuses() and breaker.allow() is None  # the probe is in flight
    breaker.success(PROBE)
    assert (breaker.state, breaker.consecutive_failures) == (CLOSED, 0)
    assert breaker.allow() == PASS


def test_a_failed_probe_opens_it_for_another_cool_down() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 10
    breaker.failure(breaker.allow() or "")
    assert (breaker.state, breaker.opened) == (OPEN, 2)
    clock.now += 9
    assert breaker.allow() is None
    clock.now += 1
    assert breaker.allow() == PROBE


def test_an_abandoned_probe_hands_its_turn_to_the_next_caller() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 10
    breaker.abandon(breaker.allow() or "")
    assert breaker.state == HALF_OPEN
    assert breaker.allow() == PROBE


def test_late_outcomes_of_requests_let_through_before_it_opened_are_ignored() -> None:
    clock = Clock()
    breaker = Breaker(2, 10.0, clock)
    slow = [breaker.allow() or "" for _ in range(4)]  # four requests in flight
    breaker.failure(slow[0])
    breaker.failure(slow[1])
    assert breaker.state == OPEN
    clock.now += 5
    breaker.failure(slow[2])  # stale: does not push the cool-down back
    breaker.success(slow[3])  # stale: does not close it either
    assert breaker.state == OPEN
    clock.now += 5
    assert breaker.allow() == PROBE
    breaker.failure(PASS)  # a stale failure while the probe is out: the probe decides
    assert breaker.state == HALF_OPEN


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Breaker(0, 1.0)
