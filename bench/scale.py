"""Scale-out: what one more worker or API process buys, and what it costs (``--only scale``).

Two series, each point in a fresh database, the points of a series interleaved run by
run so that the machine's load moves them alike (``scale_reps`` runs, medians shown):

- **Drain**: ``scale_drain_jobs`` queued no-op jobs drained by 1, 2 and 4
  ``python -m worker`` processes, as the drain scenario does it (rate from history, CPU
  from the first job done to the last).
- **Single sends**: ``POST /jobs`` from ``api_clients`` keep-alive connections for
  ``scale_api_seconds``, to 1 and 2 ``python -m api`` processes (each on its own port,
  the same connections spread evenly over them: a load balancer's share), as the API
  scenario sends.

For each point: the rate; the CPU per 1,000 jobs of PostgreSQL (``bench.cpu``: the whole
server when it is the run's own, else the backends of the point's database) and of the
processes under test (and, for the sends, of the benchmark's own clients, which share
the machine); and the connections each process held at most, sampled every 0.25 s from
``pg_stat_activity`` (``bench.connections``). Printed as a table of its own, and in the
JSON output under ``scale``.
"""

from __future__ import annotations

import os
import secrets
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import orjson

from bench import connections, processes
from bench.api_load import api_available, load, ready, request
from bench.connections import Held
from bench.context import Context, watch
from bench.cpu import ServerCpu, own_seconds, processes_seconds
from bench.ms8 import NOOP_QUEUE, SCHEMA, Ms8System, worker_available
from bench.results import render
from bench.scenarios import drain_once
from bench.server import database_of

WORKERS = (1, 2, 4)
APIS = (1, 2)


@dataclass
class Point:
    """The runs of one point of a series."""

    kind: str  # "drain" or "sends"
    processes: int
    rates: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)  # per 1,000 jobs
    process_ms: list[float] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)

    def connections(self) -> str:
        """The peak connections of each process, in the run that held the most."""
        if not self.held:
            return "-"
        return max(self.held, key=lambda h: sum(h.peak.values())).shown()

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "processes": self.processes,
            "rate": _median(self.rates), "rates": self.rates,
            "server_cpu_ms_per_1000": _median(self.server_ms),
            "process_cpu_ms_per_1000": _median(self.process_ms),
            "client_cpu_ms_per_1000": _median(self.client_ms),
            "connections_per_process": [
                None if h.unavailable else list(h.peak.values()) for h in self.held],
        }


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ms(values: list[float]) -> str:
    value = _median(values)
    return "-" if value is None else f"{value:,.0f}"


async def run(ctx: Context) -> None:
    sizes = ctx.sizes
    drains = [Point("drain", w) for w in WORKERS] if worker_available() else []
    sends = [Point("sends", a) for a in APIS] if api_available() else []
    for rep in range(sizes.scale_reps):
        for point in drains:
            await _drain(ctx, point, rep)
        for point in sends:
            await _sends(ctx, point, rep)
    ctx.report.sections["scale-out"] = _table(ctx, drains, sends)
    ctx.report.data["scale"] = {
        "drain_jobs": sizes.scale_drain_jobs, "api_seconds": sizes.scale_api_seconds,
        "api_clients": sizes.api_clients, "runs": sizes.scale_reps,
        "server_cpu": "whole server" if ctx.server.owned else "the database's backends",
        "points": [p.as_json() for p in (*drains, *sends)],
    }


async def _drain(ctx: Context, point: Point, rep: int) -> None:
    n = ctx.sizes.scale_drain_jobs
    system = Ms8System()
    async with ctx.server.database(f"scale_drain{point.processes}") as url:
        done = await drain_once(ctx, system, url, point.processes, jobs_count=n,
                                count_connections=True)
    rate = done.window.rate
    if not rate:
        raise RuntimeError(f"{point.processes} workers: no job finished within the cap")
    if not done.complete:
        raise RuntimeError(f"{point.processes} workers: {n:,} jobs not drained within "
                           f"{ctx.sizes.drain_cap:.0f} s")
    point.rates.append(rate)
    if done.worker_cpu is not None:
        point.process_ms.append(done.worker_cpu * 1e6)
    if done.server_cpu is not None:
        point.server_ms.append(done.server_cpu * 1e6)
    if done.connections is not None:
        point.held.append(done.connections)
    ctx.say(f"scale: {n:,} drained by {point.processes} worker(s) at {rate:,.0f}/s, "
            f"connections {done.connections.shown() if done.connections else '-'} "
            f"(run {rep + 1})")


def _api_env(url: str, port: int, secret: str) -> dict[str, str]:
    return {"DATABASE_URL": url, "MS8_SCHEMA": SCHEMA, "MS8_LOG_LEVEL": "warning",
            "MS8_ENV": "production", "MS8_API_KEYS": f"bench:{secret}:read,write",
            "MS8_API_HOST": "127.0.0.1", "PORT": str(port)}


async def _sends(ctx: Context, point: Point, rep: int) -> None:
    sizes = ctx.sizes
    secret = secrets.token_hex(16)
    ports = [processes.free_port() for _ in range(point.processes)]
    one = orjson.dumps({"queue": NOOP_QUEUE, "data": {"n": 1}})
    async with ctx.server.database(f"scale_api{point.processes}") as url:
        await Ms8System().install(url)
        specs = [(f"scale-api-{i}", processes.python_module("api"), _api_env(url, port, secret))
                 for i, port in enumerate(ports)]
        conn = await asyncpg.connect(url)
        admin = await ctx.server.admin()
        try:
            server = await ServerCpu.find(conn, whole_server=ctx.server.owned)
            async with processes.running(specs, ctx.log_dir) as procs:
                await _ready(ctx, ports, secret, one, procs)
                async with connections.sampled(admin, database_of(url), procs) as held:
                    pids = [p.pid for p in procs]
                    api0, client0 = processes_seconds(pids), own_seconds(os.getpid())
                    server0 = server.seconds() if server else 0.0
                    sent, elapsed = await watch(
                        load(ports, request("/jobs", one, secret), sizes.api_clients,
                             sizes.scale_api_seconds), procs,
                        timeout=sizes.scale_api_seconds + 60, what="single sends")
                    api1, client1 = processes_seconds(pids), own_seconds(os.getpid())
                    server1 = server.seconds() if server else 0.0
            stored = await conn.fetchval(f'SELECT count(*) FROM "{SCHEMA}".jobs')
        finally:
            await conn.close()
            await admin.close()
    if stored != sent + len(ports):  # and each API's first send, which said it was ready
        raise RuntimeError(f"the APIs accepted {sent + len(ports)} jobs but {stored} are stored")
    if not sent:
        raise RuntimeError(f"{point.processes} API processes accepted no send")
    point.rates.append(sent / elapsed)
    point.process_ms.append((api1 - api0) / sent * 1e6)
    point.client_ms.append((client1 - client0) / sent * 1e6)
    if server is not None:
        point.server_ms.append((server1 - server0) / sent * 1e6)
    point.held.append(held)
    ctx.say(f"scale: {sent:,} single sends to {point.processes} API process(es) in "
            f"{elapsed:.1f} s = {sent / elapsed:,.0f}/s, connections {held.shown()} "
            f"(run {rep + 1})")


async def _ready(ctx: Context, ports: Sequence[int], secret: str, body: bytes,
                 procs: list[processes.Process]) -> None:
    """Each API answers a first send (it has opened its pool and listens)."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    for port in ports:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers,
                                     timeout=30) as client:
            await watch(ready(client, body), procs, timeout=ctx.sizes.start_timeout,
                        what="the API's first answer")


def _table(ctx: Context, drains: list[Point], sends: list[Point]) -> str:
    sizes = ctx.sizes
    rows = [["what", "processes", "rate (/s)", "vs 1", "PostgreSQL CPU per 1,000 (ms)",
             "processes' CPU per 1,000 (ms)", "clients' CPU per 1,000 (ms)",
             "connections held, each process (peak)"]]
    for label, points, unit in (
            (f"drain of {sizes.scale_drain_jobs:,}, workers", drains, "jobs"),
            (f"POST /jobs, {sizes.api_clients} clients, APIs", sends, "sends")):
        base = _median(points[0].rates) if points else None
        for point in points:
            rate = _median(point.rates)
            rows.append([
                f"{label} ({unit})", str(point.processes),
                "-" if rate is None else f"{rate:,.0f}",
                "-" if not (rate and base) else f"{rate / base:.2f}x",
                _ms(point.server_ms), _ms(point.process_ms), _ms(point.client_ms),
                point.connections()])
    scope = ("the whole server" if ctx.server.owned
             else "the backends of each point's database only")
    return (render(rows, text_columns=2)
            + f"\n\nMedians of {sizes.scale_reps} run(s) per point, interleaved; "
            f"PostgreSQL's CPU is {scope}; the clients are the benchmark's own process. "
            f"{os.cpu_count()} CPUs.")
