"""Checking the per-minute rollups against history, which they summarise: for every
(queue, minute, final state), the count, the run-time and wait buckets and maxima must
be exactly what history says, and the sums equal to rounding."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from typing import Any

import pytest

from shared.db import Database
from shared.queue.rollups import BOUNDS, BUCKETS

Key = tuple[str, Any, str]


async def rolled_up(db: Database) -> dict[Key, dict[str, Any]]:
    """The rollups summed over their shards."""
    s = f'"{db.schema}"'
    rows = await db.pool.fetch(
        f"SELECT queue, minute, state::text AS state, sum(n)::bigint AS n,"
        f" {s}.sum_counts(run_buckets) AS run_buckets, sum(run_seconds) AS run_seconds,"
        f" max(run_max) AS run_max, {s}.sum_counts(wait_buckets) AS wait_buckets,"
        f" sum(wait_seconds) AS wait_seconds, max(wait_max) AS wait_max"
        f" FROM {s}.job_rollups GROUP BY 1, 2, 3")
    return {(r["queue"], r["minute"], r["state"]): dict(r) for r in rows}


def _seconds(later: datetime, earlier: datetime | None) -> float | None:
    return None if earlier is None else max((later - earlier).total_seconds(), 0.0)


async def from_history(db: Database) -> dict[Key, dict[str, Any]]:
    """The same numbers, counted job by job from history, in Python (so that a mistake in
    the trigger's SQL is not repeated here)."""
    rows = await db.pool.fetch(
        f'SELECT queue, state::text AS state, start_after, started_at, completed_at'
        f' FROM "{db.schema}".history')
    out: dict[Key, dict[str, Any]] = {}
    for r in rows:
        done = r["completed_at"]
        minute = done.replace(second=0, microsecond=0)
        entry = out.setdefault((r["queue"], minute, r["state"]), {
            "n": 0, "run_buckets": [0] * BUCKETS, "run_seconds": 0.0, "run_max": None,
            "wait_buckets": [0] * BUCKETS, "wait_seconds": 0.0, "wait_max": None})
        entry["n"] += 1
        started = r["started_at"]
        timings = {"run": _seconds(done, started),
                   "wait": None if started is None else _seconds(started, r["start_after"])}
        for kind in ("run", "wait"):
            value = timings[kind]
            if value is None:
                continue
            entry[f"{kind}_buckets"][bisect_right(BOUNDS, value)] += 1
            entry[f"{kind}_seconds"] += value
            most = entry[f"{kind}_max"]
            entry[f"{kind}_max"] = value if most is None else max(most, value)
    return out


async def assert_rollups_match_history(db: Database) -> int:
    """Fail naming the first difference; returns how many jobs history holds."""
    rollups, history = await rolled_up(db), await from_history(db)
    assert set(rollups) == set(history), "rollups and history name other minutes"
    for key, expected in history.items():
        got = rollups[key]
        assert got["n"] == expected["n"], key
        for kind in ("run", "wait"):
            assert list(got[f"{kind}_buckets"]) == expected[f"{kind}_buckets"], (key, kind)
            assert got[f"{kind}_max"] == expected[f"{kind}_max"], (key, kind)
            assert got[f"{kind}_seconds"] == pytest.approx(expected[f"{kind}_seconds"]), key
    return sum(e["n"] for e in history.values())
