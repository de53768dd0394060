"""The API under sustained load while workers drain what it accepts (scenario 8).

``python -m api`` runs as in production (one process, an API key), with two
``python -m worker`` processes draining the queue it sends to. ``load_clients``
keep-alive connections then call it for ``load_seconds`` (a minute in the full run;
``--load-seconds`` changes it), each as a client watching its work would: send a job
(``POST /jobs``, 201), read it back (``GET /jobs/{id}``, 200), again. Every other answer,
and every broken connection, is an error (the connection is opened again and the client
goes on). The latency of each request is from its first byte written to the last byte
of its answer read; the percentiles are over every request of both kinds.

Afterwards every accepted job must reach history as completed: the workers keep up with
the API, or the table says how long they took to catch up. Clients as in ``api_load``:
a few lines of asyncio, not httpx, so that the clients do not eat the CPU they measure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import time
from dataclasses import dataclass, field

import asyncpg
import httpx
import orjson

from bench import processes
from bench.api_load import api_available, ready
from bench.context import Context, poll, watch
from bench.ms8 import NOOP_QUEUE, SCHEMA, Ms8System
from bench.results import MS8, Target

WORKERS = 2


@dataclass
class Tally:
    """What the clients saw: latencies (s) of answered requests, errors by kind."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0  # jobs accepted (201)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())


class Connection:
    """One keep-alive HTTP/1.1 connection to the API."""

    def __init__(self, port: int, secret: str) -> None:
        self.port = port
        self.auth = f"Authorization: Bearer {secret}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n").encode() + self.auth
        if body:
            head += (f"Content-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n").encode()
        self.writer.write(head + b"\r\n" + body)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in answer.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return int(answer[9:12]), await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _client(port: int, secret: str, stop_at: float, tally: Tally, n: int) -> None:
    conn = Connection(port, secret)
    body = orjson.dumps({"queue": NOOP_QUEUE, "data": {"client": n}})
    try:
        while time.monotonic() < stop_at:
            job_id = await _timed(tally, conn, "POST", "/jobs", body, 201)
            if job_id is not None:
                tally.sent += 1
                await _timed(tally, conn, "GET", f"/jobs/{job_id}", b"", 200)
    finally:
        conn.close()


async def _timed(tally: Tally, conn: Connection, method: str, path: str, body: bytes,
                 expected: int) -> int | None:
    """One request; the job's id from a good answer, None from an error."""
    started = time.perf_counter()
    try:
        status, answer = await conn.call(method, path, body)
    except (OSError, asyncio.IncompleteReadError, ValueError) as error:
        tally.error(f"{method} {type(error).__name__}")
        conn.close()
        return None
    if status != expected:
        tally.error(f"{method} {status}")
        return None
    tally.latencies.append(time.perf_counter() - started)
    return int(orjson.loads(answer)["id"])


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def run(ctx: Context) -> None:
    if not api_available():
        ctx.say("API not available: skipped")
        return
    sizes = ctx.sizes
    seconds, clients = sizes.load_seconds, sizes.load_clients
    rate = ctx.report.metric(
        "load_rate", f"API under load: {clients} clients, {seconds:.0f} s, {WORKERS} workers "
        "draining", "requests/s", "higher")
    errors = ctx.report.metric("load_errors", "API under load: error rate", "%", "lower",
                               digits=2, target=Target("0", 0.0, "lower"))
    p = {q: ctx.report.metric(f"load_p{q}", f"API under load: latency p{q}", "ms", "lower",
                              digits=1) for q in (50, 95, 99)}
    drained = ctx.report.metric("load_drained", "API under load: jobs completed by the "
                                "workers", "per s", "higher")
    secret = secrets.token_hex(16)
    port = processes.free_port()
    async with ctx.server.database("load") as url:
        await Ms8System().install(url)
        api_env = {"DATABASE_URL": url, "MS8_SCHEMA": SCHEMA, "MS8_LOG_LEVEL": "warning",
                   "MS8_ENV": "production", "MS8_API_KEYS": f"bench:{secret}:read,write",
                   "MS8_API_HOST": "127.0.0.1", "PORT": str(port)}
        specs = [("load-api", processes.python_module("api"), api_env),
                 *Ms8System().workers(url, WORKERS, {})]
        async with processes.running(specs, ctx.log_dir) as procs:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10,
                                         headers={"Authorization": f"Bearer {secret}",
                                                  "Content-Type": "application/json"}) as c:
                await watch(ready(c, orjson.dumps({"queue": NOOP_QUEUE})), procs,
                            timeout=sizes.start_timeout, what="the API's first answer")
            tally = Tally()
            load_avg = os.getloadavg()[0]
            started = time.monotonic()
            await watch(asyncio.gather(*(
                _client(port, secret, started + seconds, tally, n) for n in range(clients))),
                procs, timeout=seconds + 60, what="the load")
            elapsed = time.monotonic() - started
            conn = await asyncpg.connect(url)
            try:
                caught_up = await _drained(conn, tally.sent, procs, sizes.start_timeout)
                done = await conn.fetchval(
                    f"SELECT count(*) FROM \"{SCHEMA}\".history WHERE queue = $1"
                    f" AND state = 'completed'", NOOP_QUEUE)
            finally:
                await conn.close()
    if done != tally.sent + 1:  # and the first send, which said the API was ready
        raise RuntimeError(f"{tally.sent + 1:,} jobs accepted, {done:,} completed")
    ordered = sorted(tally.latencies)
    if not ordered:
        raise RuntimeError(f"no request answered: {tally.errors}")
    rate.add(MS8, tally.requests / elapsed, (
        f"{tally.requests:,} requests in {elapsed:.1f} s ({tally.sent:,} sends, each read "
        f"back); load average {load_avg:.2f} at the start, {os.getloadavg()[0]:.2f} at the "
        f"end"))
    errors.add(MS8, 100 * sum(tally.errors.values()) / tally.requests,
               ", ".join(f"{k}: {v}" for k, v in sorted(tally.errors.items())) or None)
    for q, metric in p.items():
        metric.add(MS8, 1000 * percentile(ordered, q / 100))
    drained.add(MS8, tally.sent / (elapsed + caught_up),
                f"every accepted job completed, the last {caught_up:.1f} s after the load")
    ctx.say(f"API under load: {tally.requests:,} requests in {elapsed:.1f} s, "
            f"{sum(tally.errors.values())} errors, p50 {1000 * statistics.median(ordered):.1f}"
            f" ms, p99 {1000 * percentile(ordered, 0.99):.1f} ms; drained "
            f"{caught_up:.1f} s after")


async def _drained(conn: asyncpg.Connection, sent: int, procs: list[processes.Process],
                   timeout: float) -> float:
    """Seconds until every accepted job has completed."""
    started = time.monotonic()

    async def empty() -> bool:
        return await conn.fetchval(f'SELECT count(*) FROM "{SCHEMA}".jobs') == 0

    if not await poll(empty, procs, deadline=started + timeout, interval=0.05):
        raise TimeoutError(f"the workers had not drained {sent:,} jobs {timeout:.0f} s "
                           f"after the load")
    return time.monotonic() - started

