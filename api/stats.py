"""How the numbers moved, over HTTP: the numbers behind the dashboard's charts.

    GET /stats/throughput    finished jobs per bucket and queue: completed, failed,
                             cancelled, run time and wait percentiles (the rollups)
    GET /stats/queue-depth   waiting and active jobs and the oldest due job's age per
                             bucket and queue (the leader's samples, peak of the bucket)
    GET /stats/fleet         workers, slots and busy slots per bucket (samples, peak)

Each takes ``hours`` (default 24) before ``until`` (default now) and cuts them into the
buckets of ``shared.queue.Window``: one minute for an hour, ten for a day. Series are
dense, one value per bucket of ``at``; a sample series has null where no sample was
taken. The dashboard draws its charts from these same bodies, so a chart and its JSON
never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from api import rfc3339, wire
from api.endpoint import Call, Endpoint, Param, Reply
from api.schemas import INPUT_TIMESTAMP, QUEUE_NAME
from shared import queue
from shared.db import Database
from shared.queue import FINISHED_STATES

DEFAULT_HOURS = 24
QUANTILES = (("p50", 0.5), ("p95", 0.95))

HOURS = Param("hours", "query",
              {"type": "integer", "minimum": 1, "maximum": queue.Window.MAX_HOURS},
              f"how many hours before `until` (default {DEFAULT_HOURS})")
UNTIL = Param("until", "query", INPUT_TIMESTAMP, "the end of the range (default now)")
QUEUE = Param("queue", "query", QUEUE_NAME, "one queue only (default every queue)")


def window_of(query: dict[str, Any]) -> queue.Window:
    until = query.get("until")
    return queue.Window.last(query.get("hours", DEFAULT_HOURS),
                             None if until is None else rfc3339.parse(until))


def _frame(window: queue.Window) -> dict[str, Any]:
    return {"since": window.start, "until": window.end, "step_seconds": window.step,
            "at": window.buckets}


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _timing(prefix: str, timing: queue.Timing) -> dict[str, float | None]:
    out = {f"{prefix}_{name}_seconds": _seconds(timing.quantile(q)) for name, q in QUANTILES}
    out[f"{prefix}_max_seconds"] = _seconds(timing.max_seconds)
    return out


def throughput_body(window: queue.Window, found: Sequence[queue.Rollup],
                    only: str | None = None) -> dict[str, Any]:
    """Dense series per queue (those with a finished job in the window, or ``only``)."""
    names = sorted({r.queue for r in found} | ({only} if only else set()))
    by_queue: dict[str, dict[str, Any]] = {}
    for name in names:
        by_queue[name] = {
            "counts": {state: [0] * window.count for state in FINISHED_STATES},
            "run": [queue.Timing()] * window.count, "wait": [queue.Timing()] * window.count}
    for r in found:
        i = window.index(r.at)
        if i is None or r.state not in FINISHED_STATES:
            continue
        series = by_queue[r.queue]
        series["counts"][r.state][i] += r.count
        series["run"][i] = series["run"][i] + r.run
        series["wait"][i] = series["wait"][i] + r.wait
    queues = []
    for name in names:
        series = by_queue[name]
        run_all = sum(series["run"], queue.Timing())
        wait_all = sum(series["wait"], queue.Timing())
        body: dict[str, Any] = {"queue": name}
        body.update(series["counts"])
        for label, q in QUANTILES:
            body[f"run_{label}_seconds"] = [_seconds(t.quantile(q)) for t in series["run"]]
        body["wait_p95_seconds"] = [_seconds(t.quantile(0.95)) for t in series["wait"]]
        body["totals"] = {**{state: sum(series["counts"][state]) for state in FINISHED_STATES},
                          **_timing("run", run_all), **_timing("wait", wait_all)}
        queues.append(body)
    return {**_frame(window), "queues": queues}


async def throughput(db: Database, window: queue.Window, only: str | None = None
                     ) -> dict[str, Any]:
    return throughput_body(window, await queue.rollups(db, window, queue=only), only)


async def queue_depth(db: Database, window: queue.Window, only: str | None = None
                      ) -> dict[str, Any]:
    found = await queue.queue_samples(db, window, queue=only)
    names = sorted({s.queue for s in found})
    series: dict[str, dict[str, list[Any]]] = {
        name: {"waiting": [None] * window.count, "active": [None] * window.count,
               "oldest_waiting_seconds": [None] * window.count} for name in names}
    for s in found:
        i = window.index(s.at)
        if i is not None:
            series[s.queue]["waiting"][i] = s.waiting
            series[s.queue]["active"][i] = s.active
            series[s.queue]["oldest_waiting_seconds"][i] = _seconds(s.oldest_waiting_seconds)
    return {**_frame(window), "queues": [{"queue": name, **series[name]} for name in names]}


async def fleet(db: Database, window: queue.Window) -> dict[str, Any]:
    body: dict[str, Any] = {**_frame(window), "workers": [None] * window.count,
                            "slots": [None] * window.count, "busy": [None] * window.count}
    for s in await queue.fleet_samples(db, window):
        i = window.index(s.at)
        if i is not None:
            body["workers"][i], body["slots"][i], body["busy"][i] = s.workers, s.slots, s.busy
    return body


async def get_throughput(call: Call) -> Response:
    only = call.query.get("queue")
    return wire.json_response(await throughput(call.ctx.db, window_of(call.query), only))


async def get_queue_depth(call: Call) -> Response:
    only = call.query.get("queue")
    return wire.json_response(await queue_depth(call.ctx.db, window_of(call.query), only))


async def get_fleet(call: Call) -> Response:
    return wire.json_response(await fleet(call.ctx.db, window_of(call.query)))


ENDPOINTS = [
    Endpoint(
        "GET", "/stats/throughput", get_throughput,
        "Finished jobs over time, per queue and outcome", "getThroughput", "stats",
        {200: Reply("One value per bucket of `at` for each queue that finished a job.",
                    "Throughput")},
        params=[HOURS, UNTIL, QUEUE],
        description="Counted by the database as jobs end (per-minute rollups), kept as "
                    "long as the queue's history and at least a day. Percentiles are "
                    "estimated from run-time buckets; null where no job ran."),
    Endpoint(
        "GET", "/stats/queue-depth", get_queue_depth,
        "Waiting and active jobs over time, per queue", "getQueueDepth", "stats",
        {200: Reply("The peak of each bucket's samples, null where none was taken.",
                    "QueueDepth")},
        params=[HOURS, UNTIL, QUEUE],
        description="Sampled by the maintenance leader every MS8_SAMPLE_SECONDS (60)."),
    Endpoint(
        "GET", "/stats/fleet", get_fleet,
        "The fleet's workers, slots and busy slots over time", "getFleetLoad", "stats",
        {200: Reply("The peak of each bucket's samples, null where none was taken.",
                    "FleetLoad")},
        params=[HOURS, UNTIL],
        description="Sampled by the maintenance leader every MS8_SAMPLE_SECONDS (60)."),
]
