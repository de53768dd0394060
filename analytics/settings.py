"""The microservices analytics are collected from, and how to call them: env → frozen dataclasses.

``MS8_SOURCES`` lists them as ``name=base_url`` pairs (default: the four of the local
stub). The per-source numbers share one syntax: a bare value is the default of every
source, ``name=value`` overrides one source, e.g. ``MS8_SOURCE_TIMEOUT="10,learner-ai=30"``.
A bad value stops the process with a message naming the variable; a source named in an
override but not in ``MS8_SOURCES`` is refused (a typo would silently do nothing).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from shared import numerals
from shared.settings import SettingsError, env_float, env_int, env_str

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
STUB_URL = "http://127.0.0.1:8090"
DEFAULT_SOURCE_NAMES = ("skills-engine", "course-builder", "assessment", "learner-ai")
DEFAULT_SOURCES = ",".join(f"{name}={STUB_URL}/{name}" for name in DEFAULT_SOURCE_NAMES)


@dataclass(frozen=True, slots=True)
class Source:
    """One microservice: ``GET {base_url}/user-roles/{id}`` answers a JSON object."""

    name: str
    base_url: str
    timeout: float = 10.0          # seconds per attempt, connect to last byte
    concurrency: int = 50          # requests at once from one worker process
    breaker_failures: int = 5      # consecutive failures that open the breaker
    breaker_cooldown: float = 30.0  # seconds open before one probe is let through

    def url(self, user_role_id: int) -> str:
        return f"{self.base_url}/user-roles/{user_role_id}"


@dataclass(frozen=True, slots=True)
class AnalyticsSettings:
    sources: tuple[Source, ...]
    retry_delay: float    # pause before the one quick retry of a transient failure
    max_bytes: int        # a larger answer is refused (keeps a snapshot small)
    fanout_chunk: int     # user-roles sent per transaction by the nightly fan-out

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(source.name for source in self.sources)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AnalyticsSettings:
        env = os.environ if env is None else env
        urls = parse_sources("MS8_SOURCES", env_str(env, "MS8_SOURCES", DEFAULT_SOURCES) or "")
        names = tuple(urls)
        timeout = per_source(env, "MS8_SOURCE_TIMEOUT", names, 10.0, float, 0.05, 3600.0)
        concurrency = per_source(env, "MS8_SOURCE_CONCURRENCY", names, 50, int, 1, 10_000)
        failures = per_source(env, "MS8_SOURCE_BREAKER_FAILURES", names, 5, int, 1, 10_000)
        cooldown = per_source(env, "MS8_SOURCE_BREAKER_COOLDOWN", names, 30.0, float,
                              0.01, 86400.0)
        sources = tuple(
            Source(name, url, timeout[name], concurrency[name], failures[name], cooldown[name])
            for name, url in urls.items())
        return cls(
            sources=sources,
            retry_delay=env_float(env, "MS8_SOURCE_RETRY_DELAY", 0.2, low=0, high=60),
            max_bytes=env_int(env, "MS8_SOURCE_MAX_BYTES", 256 * 1024, low=1024,
                              high=64 * 1024 * 1024),
            fanout_chunk=env_int(env, "MS8_FANOUT_CHUNK", 5000, low=1, high=50_000),
        )


def parse_sources(variable: str, raw: str) -> dict[str, str]:
    """``"a=http://h/a, b=http://h/b"`` → {"a": "http://h/a", "b": "http://h/b"}."""
    sources: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, url = (s.strip() for s in item.partition("="))
        if not sep:
            raise SettingsError(f"{variable}: {item!r} must be written name=base_url")
        if not SOURCE_NAME.fullmatch(name):
            raise SettingsError(
                f"{variable}: {name!r} is not a source name (1-63 characters of a-z, 0-9, "
                "'_', '.', '-', starting with a letter or digit)")
        if name in sources:
            raise SettingsError(f"{variable}: source {name!r} is listed twice")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise SettingsError(
                f"{variable}: the base URL of {name!r} must be http(s)://host[:port][/path] "
                "without a query")
        sources[name] = url.rstrip("/")
    if not sources:
        raise SettingsError(f"{variable} must name at least one source")
    return sources


Number = TypeVar("Number", int, float)


def per_source(
    env: Mapping[str, str], variable: str, names: tuple[str, ...], default: Number,
    kind: type[Number], low: float, high: float,
) -> dict[str, Number]:
    """``"10,learner-ai=30"`` → 10 for every source, 30 for learner-ai. Numbers are read
    as written, in ASCII digits (``shared.numerals``): ``"٣٠"`` or ``"+30"`` is refused."""
    value_of = {name: default for name in names}
    raw = env_str(env, variable)
    if raw is None:
        return value_of
    overrides: dict[str, Number] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, text = (s.strip() for s in item.rpartition("="))
        what = f"{variable}: the value for {name!r}" if sep else f"{variable}"
        try:
            value = kind(numerals.whole(text) if kind is int else numerals.decimal(text))
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise SettingsError(f"{what} must be {noun}, got {text!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{what} must be between {low:g} and {high:g}, got {text}")
        if not sep:
            value_of = {n: value for n in names}
        elif name not in names:
            raise SettingsError(
                f"{variable}: {name!r} is not a source of MS8_SOURCES ({', '.join(names)})")
        else:
            overrides[name] = value
    return {**value_of, **overrides}
