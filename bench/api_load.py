"""API sends per second on one uvicorn process (scenario 5).

``python -m api`` runs as in production (one process, an API key required), against a
fresh database. Concurrent clients in the benchmark process then send for a fixed time:
first ``POST /jobs`` (one job per request), then ``POST /jobs/bulk`` (``api_many_size``
jobs per request). Every accepted send is checked against the database afterwards: the
jobs must all be there.

The clients are keep-alive HTTP/1.1 connections driven by a few lines of asyncio
(request bytes encoded once, responses parsed for status and length only), not httpx:
on a 2-core machine the clients share the CPU with uvicorn and PostgreSQL, and httpx
spends about 1 ms of CPU per request — as much as the server — so it measured itself.
httpx is used for the first request, which checks that the API answers as a client
library expects.
"""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
import socket
import time
from dataclasses import dataclass

import asyncpg
import httpx
import orjson

from bench import processes
from bench.context import Context, watch
from bench.cpu import ServerCpu, own_seconds
from bench.ms8 import NOOP_QUEUE, SCHEMA, Ms8System
from bench.profile import Profiler
from bench.results import MS8, Target


def api_available() -> bool:
    return importlib.util.find_spec("api.__main__") is not None


def _profile(ctx: Context, proc: processes.Process, name: str) -> Profiler | None:
    """With --profile, sample the API process during one load (it slows the numbers a bit:
    the sampler shares the CPU)."""
    return Profiler.start(proc, ctx.log_dir / f"{name}-profile") if ctx.profile else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(path: str, body: bytes, secret: str) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {secret}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _sender(port: int, request: bytes, stop_at: float, counts: list[int]) -> None:
    """One keep-alive connection sending ``request`` until ``stop_at``; every answer must
    be 201."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            if head[9:12] != b"201":
                raise RuntimeError(f"the API answered {head[9:12].decode()}: {body[:300]!r}")
            counts[0] += 1
    finally:
        writer.close()


async def load(ports: list[int], request: bytes, clients: int,
               seconds: float) -> tuple[int, float]:
    """Requests answered 201 to ``clients`` concurrent connections over ``seconds``, the
    connections spread evenly over the API processes listening on ``ports``."""
    counts = [0]
    started = time.monotonic()
    await asyncio.gather(*(_sender(ports[i % len(ports)], request, started + seconds, counts)
                           for i in range(clients)))
    return counts[0], time.monotonic() - started


async def ready(client: httpx.AsyncClient, body: bytes) -> None:
    """Until the API accepts a send (it answers once it has migrated and listens)."""
    while True:
        try:
            response = await client.post("/jobs", content=body)
        except httpx.TransportError:
            await asyncio.sleep(0.1)
            continue
        if response.status_code == 201:
            return
        raise RuntimeError(f"the API refused the first send: {response.status_code} "
                           f"{response.text[:300]}")


@dataclass
class _Cpu:
    """CPU time of the API process and of PostgreSQL from ``start`` on: on a shared
    machine the rate follows the CPU the run gets, the CPU per send much less."""

    api_pid: int
    api: float
    server: ServerCpu | None
    server_seconds: float

    @classmethod
    async def start(cls, url: str, api_pid: int, *, owned: bool) -> _Cpu:
        conn = await asyncpg.connect(url)
        try:
            server = await ServerCpu.find(conn, whole_server=owned)
        finally:
            await conn.close()
        return cls(api_pid, own_seconds(api_pid), server,
                   server.seconds() if server is not None else 0.0)

    def per(self, sends: int) -> str:
        """The CPU per send so far, as text."""
        api = (own_seconds(self.api_pid) - self.api) / max(sends, 1) * 1e6
        if self.server is None:
            return f"API {api:.0f} µs CPU per send"
        server = (self.server.seconds() - self.server_seconds) / max(sends, 1) * 1e6
        return f"CPU per send: API {api:.0f} µs, PostgreSQL {server:.0f} µs"


async def run(ctx: Context) -> None:
    if not api_available():
        ctx.report.context["notes"].append("API not available yet: its sends are not measured")
        ctx.say("API not available: skipped")
        return
    sizes = ctx.sizes
    single = ctx.report.metric(
        "api_single", f"API POST /jobs, {sizes.api_clients} clients", "sends/s", "higher",
        target=Target("≥ 3,000/s", 3000, "higher"))
    many = ctx.report.metric(
        "api_many", f"API POST /jobs/bulk of {sizes.api_many_size}", "jobs/s", "higher",
        target=Target("≥ 100,000/s", 100_000, "higher"))
    secret = secrets.token_hex(16)
    port = _free_port()
    one = orjson.dumps({"queue": NOOP_QUEUE, "data": {"n": 1}})
    bulk = orjson.dumps({"jobs": [{"queue": NOOP_QUEUE, "data": {"n": i}}
                                  for i in range(sizes.api_many_size)]})
    async with ctx.server.database("api") as url:
        await Ms8System().install(url)
        env = {"DATABASE_URL": url, "MS8_SCHEMA": SCHEMA, "MS8_LOG_LEVEL": "warning",
               "MS8_ENV": "production", "MS8_API_KEYS": f"bench:{secret}:read,write",
               "MS8_API_HOST": "127.0.0.1", "PORT": str(port)}
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
        async with processes.running([("api", processes.python_module("api"), env)],
                                     ctx.log_dir) as procs, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers,
                                  timeout=30) as client:
            await watch(ready(client, one), procs, timeout=sizes.start_timeout,
                        what="the API's first answer")
            profiler = _profile(ctx, procs[0], "api-single")
            cpu = await _Cpu.start(url, procs[0].pid, owned=ctx.server.owned)
            sent, elapsed = await watch(
                load([port], request("/jobs", one, secret), sizes.api_clients,
                      sizes.api_seconds), procs,
                timeout=sizes.api_seconds + 60, what="single sends")
            if profiler is not None:
                ctx.report.sections["profile: API single sends"] = profiler.finish()
            single.add(MS8, sent / elapsed)
            ctx.say(f"API: {sent:,} single sends in {elapsed:.1f} s = {sent / elapsed:,.0f}/s"
                    f" ({cpu.per(sent)})")
            profiler = _profile(ctx, procs[0], "api-bulk")
            requests, elapsed = await watch(
                load([port], request("/jobs/bulk", bulk, secret),
                      max(2, sizes.api_clients // 4), sizes.api_seconds), procs,
                timeout=sizes.api_seconds + 60, what="bulk sends")
            if profiler is not None:
                ctx.report.sections["profile: API bulk sends"] = profiler.finish()
            jobs = requests * sizes.api_many_size
            many.add(MS8, jobs / elapsed)
            ctx.say(f"API: {jobs:,} jobs in {requests:,} bulk sends in {elapsed:.1f} s = "
                    f"{jobs / elapsed:,.0f} jobs/s")
        conn = await asyncpg.connect(url)
        try:
            stored = await conn.fetchval(f'SELECT count(*) FROM "{SCHEMA}".jobs')
        finally:
            await conn.close()
        if stored != 1 + sent + jobs:
            raise RuntimeError(f"the API accepted {1 + sent + jobs} jobs but {stored} are stored")
