"""Backoff: jittered waits around a delay that doubles up to its cap and resets."""

from __future__ import annotations

import pytest

from shared import backoff as module
from shared.backoff import Backoff


def test_the_delay_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.2, 1.0)
    delays = []
    for _ in range(5):
        delays.append(backoff.delay)
        backoff.next()
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])  # not x1.5: 0.3, 0.45, ...
    backoff.reset()
    assert backoff.delay == 0.2


@pytest.mark.parametrize("draw, factor", [(0.0, 0.5), (0.5, 1.0), (0.999, 1.499)])
def test_each_wait_is_the_delay_times_a_factor_from_half_to_one_and_a_half(
        monkeypatch: pytest.MonkeyPatch, draw: float, factor: float) -> None:
    monkeypatch.setattr(module.random, "random", lambda: draw)
    backoff = Backoff(0.2, 1.0)
    waits = [backoff.next() for _ in range(4)]
    assert waits == pytest.approx([0.2 * factor, 0.4 * factor, 0.8 * factor, 1.0 * factor])
