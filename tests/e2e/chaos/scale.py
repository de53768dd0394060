"""How big the chaos scenarios are: modest by default (the suite shares a loaded machine),
larger on request.

``MS8_CHAOS_SCALE`` multiplies every scenario's user-roles (1 → about a thousand each);
``MS8_CHAOS_OUTAGE_SECONDS`` is how long PostgreSQL stays down (15 s in the full suite,
3 s in the subset that every test run includes). ``MS8_CHAOS_KILL_SECONDS`` is the
interval between two SIGKILLs of a worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _number(name: str, default: float, low: float) -> float:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class Scale:
    factor: float
    full: bool  # the whole suite (``pytest -m chaos``), not the subset every run includes
    outage_seconds: float
    kill_seconds: float

    @classmethod
    def from_env(cls, *, full: bool) -> Scale:
        return cls(
            factor=_number("MS8_CHAOS_SCALE", 1.0, 0.01),
            full=full,
            outage_seconds=_number("MS8_CHAOS_OUTAGE_SECONDS", 15.0 if full else 3.0, 0.0),
            kill_seconds=_number("MS8_CHAOS_KILL_SECONDS", 3.0, 0.1))

    def user_roles(self, base: int = 1000) -> int:
        """``base`` user-roles at scale 1; never fewer than 10."""
        return max(10, round(base * self.factor))
