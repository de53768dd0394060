"""Handlers for the fleet-cap test, loaded into worker processes with ``--handlers``.

- ``counted``: counts itself in and out of the one row of ``fleet_probe`` (which the test
  creates) around a short sleep, keeping the peak, so the test knows the most runs that
  were ever inside a handler at once across the fleet, not what a sample happened to see.
  Updates of one row serialise, so the count is exact.
"""

from __future__ import annotations

import asyncio

from worker.context import JobContext
from worker.handlers import handler

ENTER = "UPDATE fleet_probe SET running = running + 1, peak = greatest(peak, running + 1)"
LEAVE = "UPDATE fleet_probe SET running = running - 1"


@handler("counted")
async def counted(ctx: JobContext) -> None:
    await ctx.db.pool.execute(ENTER)
    try:
        await asyncio.sleep(float(ctx.data.get("seconds", 0.05)))
    finally:
        await ctx.db.pool.execute(LEAVE)
