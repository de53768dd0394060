"""500 concurrent fresh-data requests for 50 user-roles, against the API process while
workers run: 50 jobs, and every client told the job of its user-role.

While the requests arrive the sources take 100 s to answer, so the jobs the workers
start keep running (and the others wait) until the last request has landed, whatever
the machine's speed: one job per user-role at a time means one job each here. Then the
workers are replaced (SIGTERM: the running jobs are handed back) and the new ones, with
the sources answering at once, finish all 50. Measured: the answers' statuses, the jobs
created, wrong ids, and the latency of the requests (printed, not asserted).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter

import httpx
import orjson
import pytest

from analytics import user_roles
from analytics.fresh import FRESH_QUEUE
from tests.e2e.chaos import audit
from tests.e2e.chaos.lab import API_SECRET, Lab
from tests.e2e.chaos.record import record
from tests.support import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

USER_ROLES = 50
REQUESTS = 500


async def test_500_concurrent_fresh_data_requests_for_50_user_roles_make_50_jobs(
    lab: Lab,
) -> None:
    await user_roles.seed(lab.db, USER_ROLES)
    await lab.sources(latency_ms=100_000)
    queues = f"{FRESH_QUEUE}=10"
    fleet = await lab.workers(2, queues, MS8_SOURCE_TIMEOUT="200",
                              MS8_WORKER_GRACE_SECONDS="0.5")
    api = await lab.api()
    asked = [1 + i % USER_ROLES for i in range(REQUESTS)]
    random.Random(7).shuffle(asked)
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(base_url=api, limits=limits, timeout=120, headers={
            "Authorization": f"Bearer {API_SECRET}"}) as client:
        started = time.monotonic()
        answers = await asyncio.gather(*(_ask(client, u) for u in asked))
        burst_seconds = time.monotonic() - started
    statuses = Counter(a["status"] for a in answers)
    assert statuses == {202: REQUESTS}, statuses
    running = await lab.db.pool.fetchval(
        f'SELECT count(*) FROM "{lab.db.schema}".jobs WHERE queue = $1 AND state = \'active\'',
        FRESH_QUEUE)
    assert running > 0  # the burst met running jobs, not only waiting ones
    assert await lab.stop(fleet) == [0, 0]
    await lab.sources(latency_ms=20)
    fleet = await lab.workers(2, queues)

    async def all_ended() -> bool:
        return len(await audit.ends(lab.db, FRESH_QUEUE)) >= USER_ROLES
    await wait_until(all_ended, timeout=120, interval=0.2, message="the 50 jobs ending")
    assert await lab.stop(fleet) == [0, 0]
    await audit.settled(lab.db)
    ended = await audit.ends(lab.db, FRESH_QUEUE)
    job_of = {orjson.loads(r["data"])["user_role_id"]: r["id"] for r in ended}  # type: ignore[arg-type]
    assert len(ended) == USER_ROLES and sorted(job_of) == list(range(1, USER_ROLES + 1))
    assert {(r["state"], r["attempt"]) for r in ended} == {("completed", 1)}
    wrong = [a for a in answers if a["id"] != job_of[a["user_role_id"]]
             or a["location"] != f"/jobs/{a['id']}"]
    assert wrong == []
    created = Counter(a["user_role_id"] for a in answers if a["created"])
    assert created == Counter(range(1, USER_ROLES + 1))  # one request per user-role made it
    snapshots = await lab.db.pool.fetchval(
        f'SELECT count(*) FROM "{lab.db.schema}_analytics".snapshots')
    assert snapshots == USER_ROLES
    seconds = sorted(a["seconds"] for a in answers)
    re_runs, crashes = audit.count_runs(ended)
    record("fresh-data-burst", None, requests=REQUESTS, user_roles=USER_ROLES,
           answers=dict(statuses), running_at_burst_end=running, jobs=len(ended),
           told_created=sum(created.values()),
           wrong_ids=len(wrong), lost=0, duplicates=len(ended) - len(job_of),
           re_runs=re_runs, crashes=crashes, snapshots=snapshots,
           burst_seconds=burst_seconds,
           latency_ms_p50=1000 * statistics.median(seconds),
           latency_ms_p99=1000 * seconds[int(0.99 * (len(seconds) - 1))])


async def _ask(client: httpx.AsyncClient, user_role_id: int) -> dict[str, object]:
    started = time.monotonic()
    answer = await client.post(f"/user-roles/{user_role_id}/fresh-data")
    body = answer.json() if answer.status_code == 202 else {}
    return {"user_role_id": user_role_id, "status": answer.status_code,
            "id": body.get("id"), "created": body.get("created"),
            "location": answer.headers.get("location"),
            "seconds": time.monotonic() - started}
