"""Handlers for the liveness tests, loaded into worker processes with ``--handlers``.

- ``poison``: ends the worker process on the spot (``os._exit``), as a segfault or the
  kernel's OOM killer would: no result, no hand-back, no goodbye.
"""

from __future__ import annotations

import os

from worker.context import JobContext
from worker.handlers import handler


@handler("poison")
async def poison(ctx: JobContext) -> None:
    ctx.log.warning("poison job: ending this worker process", job_id=ctx.job.id)
    os._exit(70)
