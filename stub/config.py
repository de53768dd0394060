"""How one source of the stub behaves: latency, failure rate and mode.

The same checks serve the command line (``--source NAME:latency_ms=200,mode=hang``) and
the admin endpoint (a JSON body), so a value refused by one is refused by the other, and
the error names the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from shared import numerals

DEFAULT_SOURCES = ("skills-engine", "course-builder", "assessment", "learner-ai")

# ok: the data after the latency.  hang: accept, never answer (until the client leaves).
# down: every request 503.  garbage: 200 with a body that is not JSON.  huge: 200 with
# ~10 MB of JSON.  drip: the data, a few bytes per second.
MODES = ("ok", "hang", "down", "garbage", "huge", "drip")

MAX_LATENCY_MS = 600_000
FIELDS = ("latency_ms", "failure_rate", "mode")


class InvalidSetting(ValueError):
    """A setting of a source is unknown or out of range; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SourceConfig:
    latency_ms: float = 50
    failure_rate: float = 0.0
    mode: str = "ok"

    def changed(self, changes: Mapping[str, Any]) -> SourceConfig:
        """This config with ``changes`` applied; InvalidSetting names the first bad one."""
        checked: dict[str, Any] = {}
        for field, value in changes.items():
            _known(field)
            checked[field] = _CHECKS[field](value)
        return replace(self, **checked)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _known(field: str) -> None:
    if field not in FIELDS:
        raise InvalidSetting(field, f"unknown setting (known: {', '.join(FIELDS)})")


def _number(field: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidSetting(field, f"must be a number, got {value!r}")
    if not low <= value <= high:
        raise InvalidSetting(field, f"must be between {low:g} and {high:g}, got {value!r}")
    return value


def _latency(value: Any) -> float:
    return _number("latency_ms", value, 0, MAX_LATENCY_MS)


def _failure_rate(value: Any) -> float:
    return _number("failure_rate", value, 0, 1)


def _mode(value: Any) -> str:
    if value not in MODES:
        raise InvalidSetting("mode", f"must be one of {', '.join(MODES)}, got {value!r}")
    return str(value)


_CHECKS = {"latency_ms": _latency, "failure_rate": _failure_rate, "mode": _mode}


def parse_text(field: str, text: str) -> Any:
    """A value from the command line: a number where the field wants one, written in
    ASCII digits (``shared.numerals``: no sign, other script's digits or exponent)."""
    _known(field)
    if field == "mode":
        return text
    try:
        return numerals.whole(text)
    except ValueError:
        try:
            return numerals.decimal(text)
        except ValueError:
            raise InvalidSetting(field, f"must be a number written in ASCII digits, "
                                        f"without a sign, got {text!r}") from None


def parse_override(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME:latency_ms=200,failure_rate=0.5,mode=hang`` → (name, changes)."""
    name, sep, rest = text.partition(":")
    name = name.strip()
    if not name or not sep or not rest.strip():
        raise InvalidSetting("source", f"expected NAME:key=value[,key=value…], got {text!r}")
    changes: dict[str, Any] = {}
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq:
            raise InvalidSetting(key or "source", f"expected key=value, got {item!r}")
        changes[key] = parse_text(key, value.strip())
    return name, changes
