"""The sources the stub serves: each one's config, its request counters, its failure draws.

Failure draws are repeatable. Whether the n-th draw for (source, user-role) fails is a
hash of (seed, source, user-role, n) compared with the failure rate: the same seed fails
the same requests in every run, whatever order concurrent requests arrive in, and a retry
of a failed request draws again (so a transient failure is transient).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from stub.config import SourceConfig

# The draw counts per user-role are forgotten past this many, so a stub left running
# for weeks does not grow without bound; draws then start again at n = 1.
MAX_REMEMBERED = 1_000_000
_SCALE = float(2**64)


@dataclass
class Counters:
    """Since start or the last reset. ``ok``: a 200 whose whole JSON body was sent;
    ``failed``: a 503; ``garbage``: a 200 that is not JSON; ``hung``: held unanswered."""

    received: int = 0
    ok: int = 0
    failed: int = 0
    garbage: int = 0
    hung: int = 0


class Source:
    def __init__(self, name: str, config: SourceConfig) -> None:
        self.name = name
        self.initial = config
        self.config = config
        self.counters = Counters()
        self.hanging = 0  # requests held right now (a gauge: resets leave it alone)
        self._draws: dict[str, int] = {}

    def fails(self, seed: int, user_role_id: str) -> bool:
        """Draw whether this request fails, at the current failure rate."""
        rate = self.config.failure_rate
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        if len(self._draws) >= MAX_REMEMBERED:
            self._draws.clear()
        n = self._draws.get(user_role_id, 0) + 1
        self._draws[user_role_id] = n
        key = f"{seed}\0{self.name}\0{user_role_id}\0{n}".encode()
        value = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
        return value / _SCALE < rate

    def reset(self, *, config: bool) -> None:
        self.counters = Counters()
        self._draws.clear()
        if config:
            self.config = self.initial

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.config.as_dict(),
                "counters": {**asdict(self.counters), "hanging": self.hanging}}


class Sources:
    """Every source by name, and the seed of their failure draws."""

    def __init__(self, configs: Mapping[str, SourceConfig], seed: int = 0) -> None:
        self.seed = seed
        self.by_name = {name: Source(name, config) for name, config in configs.items()}

    def get(self, name: str) -> Source | None:
        return self.by_name.get(name)

    def reset(self, *, config: bool = False) -> None:
        for source in self.by_name.values():
            source.reset(config=config)

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed,
                "sources": {name: s.as_dict() for name, s in self.by_name.items()}}
