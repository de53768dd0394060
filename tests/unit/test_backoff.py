"""Backoff: jittered waits around a delay that doubles up to its cap and resets."""

from __future__ import annotations

from shared.backoff import Backoff


def test_waits_double_within_jitter_up_to_the_cap_and_reset() -> None:
    backoff = Backoff(0.2, 1.0)
    for expected in (0.2, 0.4, 0.8, 1.0, 1.0):
        assert expected * 0.5 <= backoff.next() < expected * 1.5
    backoff.reset()
    assert backoff.delay == 0.2
