"""The benchmark's handlers, loaded into ``python -m worker`` through
``MS8_WORKER_HANDLER_MODULES=bench.ms8_handlers``: a no-op, and a probe that reports
when it started (``bench.probe``)."""

from __future__ import annotations

from typing import Any

from bench.ms8 import NOOP_QUEUE, PROBE_QUEUE
from bench.probe import report_start
from worker.context import JobContext
from worker.handlers import handler


@handler(NOOP_QUEUE)
async def noop(ctx: JobContext) -> Any:
    return None


@handler(PROBE_QUEUE)
async def probe(ctx: JobContext) -> Any:
    report_start(ctx.data.get("seq", ""))
    return None
