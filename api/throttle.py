"""Failed authentications per client address: counted, logged, and limited.

Each address has a bucket of ``per_minute`` failures that refills at that rate. A wrong
API key or login takes one; an address whose bucket is empty is answered 429 (with
``Retry-After``) for any credential it presents, right or wrong, until the bucket has
refilled by one, so a guesser learns nothing from answers while throttled. Requests
without credentials are not counted, nor are those refused while throttled, so the log
(a line per failure, another when an address is throttled; never a secret) grows no
faster than the buckets refill.

The buckets live in this process; full buckets are forgotten so the table stays small.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shared.logging import get_logger

log = get_logger(__name__)
MAX_TRACKED = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class FailureThrottle:
    def __init__(self, per_minute: float) -> None:
        self.capacity = max(per_minute, 1.0)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, _Bucket] = {}

    def _refilled(self, address: str, now: float) -> _Bucket | None:
        bucket = self._buckets.get(address)
        if bucket is not None:
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        return bucket

    def wait(self, address: str) -> float:
        """Seconds before ``address`` may try again; 0 when it may now."""
        bucket = self._refilled(address, time.monotonic())
        if bucket is None or bucket.tokens >= 1:
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def failed(self, address: str, **context: object) -> None:
        """Count and log one failed authentication from ``address``."""
        now = time.monotonic()
        bucket = self._refilled(address, now)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._forget_full()
            bucket = self._buckets[address] = _Bucket(self.capacity, now)
        bucket.tokens = max(bucket.tokens - 1, 0.0)
        log.warning("authentication failed", client=address, **context)
        if bucket.tokens < 1:
            log.warning("authentication throttled", client=address,
                        per_minute=self.capacity, retry_after=round(self.wait(address), 1))

    def _forget_full(self) -> None:
        now = time.monotonic()
        for address in list(self._buckets):
            bucket = self._refilled(address, now)
            if bucket is not None and bucket.tokens >= self.capacity:
                del self._buckets[address]
        if len(self._buckets) >= MAX_TRACKED:  # that many guessers at once: start over
            self._buckets.clear()
