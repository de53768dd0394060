"""A night whose sources misbehave in every way the stub knows: one hangs, one answers
garbage (not JSON), one ~10 MB of JSON, one drips its answer at 4 bytes a second; a fifth
answers well. Every snapshot is partial, naming the four, and the batch finishes.

Each bad source costs a few requests before its circuit breaker opens (a timeout of one
second for the slow ones), then nothing. Measured: requests each source received.
"""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from analytics import user_roles
from tests.e2e.chaos import audit
from tests.e2e.chaos.lab import Lab
from tests.e2e.chaos.record import record
from tests.stub_server import running_stub

pytestmark = [pytest.mark.chaos(ci=False), pytest.mark.slow]

BAD = {"skills-engine": "hang", "course-builder": "garbage", "assessment": "huge",
       "learner-ai": "drip"}
GOOD = "directory"


async def test_sources_that_hang_or_answer_garbage_give_partial_snapshots_naming_them(
    lab: Lab,
) -> None:
    n = lab.scale.user_roles(1000)
    await user_roles.seed(lab.db, n)
    names = (*BAD, GOOD)
    async with running_stub("--sources", ",".join(names), "--latency-ms", "20") as stub:
        lab.stub, lab.source_names = stub, names
        for source, mode in BAD.items():
            await stub.set(source, mode=mode)
        fleet = await lab.workers(2, MS8_SOURCE_TIMEOUT=f"5,{','.join(f'{s}=1' for s in BAD)}")
        night = await lab.fire()
        summary = await lab.summary(night, timeout=300)
        assert await lab.stop(fleet) == [0, 0]
        received = {s: (await stub.counters(s))["received"] for s in names}

    result = await audit.night(lab.db, night)
    assert (result.sent, result.completed, result.partial, result.failed) == (n, n, n, 0)
    assert result.lost == 0 and result.duplicates == 0
    assert summary.source_failures == dict.fromkeys(BAD, n)
    rows = await lab.db.pool.fetch(
        f'SELECT missing FROM "{lab.db.schema}_analytics".snapshots WHERE day = $1', night)
    missing = [orjson.loads(r["missing"]) for r in rows]
    assert {tuple(sorted(m["source"] for m in ms)) for ms in missing} == {tuple(sorted(BAD))}
    reasons = Counter((m["source"], m["reason"].split(" (")[0]) for ms in missing for m in ms)
    assert received[GOOD] >= n
    for source in BAD:  # a few requests per worker, then the breaker keeps it away
        assert 1 <= received[source] < n // 4, received
    record("bad-sources", result, user_roles=n, modes=BAD, requests_received=received,
           reasons={f"{s}: {r}": c for (s, r), c in sorted(reasons.items())},
           batch_seconds=summary.duration_seconds)
