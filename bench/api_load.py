"""API sends per second on one uvicorn process (scenario 5)."""

from __future__ import annotations

import importlib.util

from bench.context import Context


def api_available() -> bool:
    return importlib.util.find_spec("api.app") is not None


async def run(ctx: Context) -> None:
    if not api_available():
        ctx.report.context["notes"].append("API not available yet: its sends are not measured")
        ctx.say("API not available: skipped")
        return
    raise NotImplementedError
