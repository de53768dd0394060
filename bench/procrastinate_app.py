"""The Procrastinate app of the benchmark: ``procrastinate --app bench.procrastinate_app.app``.

Two tasks, ``noop`` and ``probe``, on the default queue. The connection string comes
from ``BENCH_PROCRASTINATE_DSN``; the worker's settings are ``procrastinate worker`` flags.
"""

from __future__ import annotations

import os

import procrastinate

from bench.probe import report_start

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(
        conninfo=os.environ.get("BENCH_PROCRASTINATE_DSN", ""),
    ),
)


@app.task(name="noop")
async def noop(n: int = 0) -> None:
    return None


@app.task(name="probe")
async def probe(seq: str = "") -> None:
    report_start(seq)
