"""What every scenario of a run shares: the server, the sizes, the report, where logs go."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.processes import Process
from bench.results import Report
from bench.server import Server
from bench.sizes import Sizes

T = TypeVar("T")


@dataclass
class Context:
    server: Server
    sizes: Sizes
    report: Report
    log_dir: Path
    profile: bool = False
    explain: bool = False

    def say(self, text: str) -> None:
        """Progress on stderr, so that stdout carries only the results."""
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def watch(
    work: Awaitable[T], procs: Sequence[Process], *, timeout: float, what: str,
) -> T:
    """Await ``work`` while checking that ``procs`` stay alive; give up after ``timeout``."""
    task = asyncio.ensure_future(work)
    deadline = time.monotonic() + timeout
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.1)
            if done:
                return task.result()
            for proc in procs:
                proc.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: nothing after {timeout:.0f} s")
    finally:
        if not task.done():
            task.cancel()


async def poll(check: Callable[[], Awaitable[bool]], procs: Sequence[Process], *,
               deadline: float, interval: float = 0.1) -> bool:
    """Call ``check`` until it is true (True) or ``deadline`` (monotonic) passes (False),
    failing as soon as one of ``procs`` dies."""
    while True:
        if await check():
            return True
        for proc in procs:
            proc.check_alive()
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
