"""Built-in handlers for tests, benchmarks and smoke checks of a deployment.

- ``noop``:  returns at once (drain-rate benchmarks).
- ``echo``:  returns its data, with the attempt and the worker that ran it.
- ``sleep``: sleeps ``data["seconds"]`` (default 1), reporting progress about ten times.
- ``fail``:  raises ``data["message"]``; with ``data["attempts"] = n`` it fails only the
  first n attempts and then succeeds (retry tests); with ``data["permanent"]`` it fails
  without retrying.
"""

from __future__ import annotations

import asyncio
from typing import Any

from worker.context import JobContext, PermanentError
from worker.handlers import handler

MAX_SLEEP_SECONDS = 7 * 86400


class HandlerFailure(RuntimeError):
    """The error the ``fail`` handler raises on purpose."""


def _fields(ctx: JobContext) -> dict[str, Any]:
    return ctx.data if isinstance(ctx.data, dict) else {}


@handler("noop")
async def noop(ctx: JobContext) -> None:
    return None


@handler("echo")
async def echo(ctx: JobContext) -> dict[str, Any]:
    return {"data": ctx.data, "attempt": ctx.attempt, "worker_id": ctx.worker_id}


@handler("sleep")
async def sleep(ctx: JobContext) -> dict[str, Any]:
    seconds = _fields(ctx).get("seconds", 1)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not (
            0 <= seconds <= MAX_SLEEP_SECONDS):
        raise PermanentError(
            f"data.seconds must be a number between 0 and {MAX_SLEEP_SECONDS}, got {seconds!r}")
    steps = min(10, int(seconds))
    if steps == 0:
        await asyncio.sleep(seconds)
    else:
        for step in range(1, steps + 1):
            await asyncio.sleep(seconds / steps)
            if step < steps:
                await ctx.progress(step * 100 // steps, f"slept {seconds * step / steps:g} s")
    return {"slept": seconds, "worker_id": ctx.worker_id}


@handler("fail")
async def fail(ctx: JobContext) -> dict[str, Any]:
    fields = _fields(ctx)
    message = str(fields.get("message", "failed on purpose"))
    attempts = fields.get("attempts")
    if isinstance(attempts, int) and not isinstance(attempts, bool) and ctx.attempt > attempts:
        return {"succeeded_on_attempt": ctx.attempt}
    if fields.get("permanent"):
        raise PermanentError(message)
    raise HandlerFailure(message)
