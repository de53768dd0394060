"""Handlers for the shutdown tests, loaded into worker processes with ``--handlers``.

- ``gated``: connects to the test's gate (``tests.e2e.gate``, ``data["gate_port"]`` on
  127.0.0.1), waits for it to open, logs ``gate passed`` and returns: the test decides
  when its runs end (while PostgreSQL is down, say), and knows when they have, since the
  log line and the result are one step of the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from worker.context import JobContext
from worker.handlers import handler


@handler("gated")
async def gated(ctx: JobContext) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", int(ctx.data["gate_port"]))
    try:
        await reader.read(1)
    finally:
        writer.close()
    ctx.log.info("gate passed", job_id=ctx.job.id)
    return {"passed": True}
