"""``fresh-data``: one user-role collected on demand, for a person watching its progress.

It takes the data of ``analytics.fresh.request`` (``{"user_role_id": N, "day": ...}``)
and does what collect-analytics does, with the same process-wide collector (breakers and
source limits shared with the batch), output (``status``, ``missing``) and snapshot
upsert, and two things more for its watcher:

- progress as each source ends, "skills-engine ok (1/4)" or "assessment missing:
  timeout after 10 s (2/4)"; the snapshot's write counts as the last step, so 100 %
  means the job is done;
- while sources are still answering near the end of its run timeout, it extends its
  deadline a little at a time (``ctx.extend_deadline``), so a slow but live source
  is not cut off; a source's own timeout still bounds every request, and
  ``MS8_MAX_RUN_SECONDS`` the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from analytics.collect import SourceResult
from analytics.fresh import FRESH_QUEUE
from shared.queue import InvalidInput, InvalidState, NotFound
from worker.context import JobContext
from worker.handlers import handler
from worker.handlers.analytics import collect_input, collect_snapshot, collector

# Extend when this little is left (at most a quarter of the run timeout), by twice it.
EXTEND_MARGIN_SECONDS = 60.0
RETRY_EXTEND_SECONDS = 1.0


@handler(FRESH_QUEUE)
async def fresh_data(ctx: JobContext) -> dict[str, Any]:
    user_role_id, day = collect_input(ctx.data)
    pending = set(collector().settings.source_names)

    async def on_source(result: SourceResult, done: int, total: int) -> None:
        pending.discard(result.source)
        what = "ok" if result.ok else f"missing: {result.reason}"
        await ctx.progress(done * 100 // (total + 1), f"{result.source} {what} ({done}/{total})")

    keeper = asyncio.create_task(_keep_deadline(ctx, pending), name=f"deadline {ctx.job.id}")
    try:
        return await collect_snapshot(ctx, user_role_id, day, on_source)
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def _keep_deadline(ctx: JobContext, pending: set[str]) -> None:
    """Near the end of the run, while ``pending`` sources are still answering, ask for
    ``2 × margin`` more; stop when the job has no run timeout or may not run longer."""
    timeout = ctx.job.run_timeout_seconds
    if timeout is None:
        return
    margin = min(EXTEND_MARGIN_SECONDS, timeout / 4)
    deadline = time.monotonic() + timeout  # the run started as the handler did, or earlier
    while True:
        await asyncio.sleep(max(0.0, deadline - margin - time.monotonic()))
        try:
            left = await ctx.extend_deadline(2 * margin)
        except (InvalidInput, InvalidState, NotFound) as refused:
            ctx.log.warning("deadline not extended", still_answering=sorted(pending),
                            reason=str(refused))
            return
        except Exception as error:  # the database: try again shortly, the timer stands
            ctx.log.warning("deadline not extended; trying again", error=str(error))
            await asyncio.sleep(RETRY_EXTEND_SECONDS)
            continue
        if left is None:
            return
        ctx.log.info("still collecting", still_answering=sorted(pending))
        deadline = time.monotonic() + left
