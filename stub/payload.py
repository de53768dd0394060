"""What the stub answers: analytics derived from a hash of (source, user-role).

The same (source, user-role) gets the same body in every run and from every replica, so
a test can compute the expected snapshot and a re-run overwrites with equal data. Bodies
stay small (a few hundred bytes), like the real services' per-user-role answers.
"""

from __future__ import annotations

import hashlib
from functools import cache

import orjson

# Per source, three metrics: (name, largest value); a largest value of 1 means a ratio.
_METRICS: dict[str, tuple[tuple[str, int], ...]] = {
    "skills-engine": (("skills_verified", 60), ("skills_in_progress", 20), ("proficiency", 1)),
    "course-builder": (("courses_enrolled", 12), ("courses_completed", 12),
                       ("completion_rate", 1)),
    "assessment": (("assessments_taken", 40), ("average_score", 100), ("pass_rate", 1)),
    "learner-ai": (("recommendations", 25), ("engagement_score", 100), ("risk_score", 1)),
}
_GENERIC = (("items", 50), ("active_days", 30), ("score", 1))
_TREND = ("down", "flat", "up")
HUGE_BYTES = 10 * 1024 * 1024


def analytics(source: str, user_role_id: str) -> dict[str, object]:
    digest = hashlib.blake2b(f"{source}\0{user_role_id}".encode(), digest_size=16).digest()
    metrics: dict[str, object] = {}
    for i, (name, high) in enumerate(_METRICS.get(source, _GENERIC)):
        word = int.from_bytes(digest[4 * i:4 * i + 4], "big")
        metrics[name] = round(word / 2**32, 3) if high == 1 else word % (high + 1)
    return {
        "source": source,
        "user_role_id": user_role_id,
        "metrics": metrics,
        "trend": _TREND[digest[12] % 3],
        "period_days": 30,
    }


def body(source: str, user_role_id: str) -> bytes:
    return orjson.dumps(analytics(source, user_role_id))


def garbage(source: str, user_role_id: str) -> bytes:
    """A body cut in the middle, as a proxy in trouble might send: not JSON."""
    whole = body(source, user_role_id)
    return whole[: len(whole) // 2]


def huge(source: str, user_role_id: str) -> bytes:
    """The data plus ~10 MB of history: valid JSON far over any sane result size."""
    return body(source, user_role_id)[:-1] + b',"history":' + _history() + b"}"


@cache
def _history() -> bytes:
    row = orjson.dumps({"day": "2024-01-01", "events": 12, "minutes": 34, "score": 0.5})
    count = HUGE_BYTES // (len(row) + 1)
    return b"[" + b",".join([row] * count) + b"]"
