"""``python -m stub`` as a real process on a free port, for any test that needs the
microservices: ``async with running_stub("--latency-ms", "0") as stub: ...``.

``stub.url`` is the server; a source's base URL is ``stub.base_url(name)`` (requests go
to ``{base_url}/user-roles/{id}``). ``stub.set(...)``, ``stub.counters(...)`` and
``stub.reset()`` drive the admin endpoint, so a test can stage an outage mid-run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.e2e.processes import Process
from tests.support import free_port


class StubServer:
    def __init__(self, process: Process, port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.admin = httpx.AsyncClient(base_url=self.url, timeout=10)

    async def healthy(self) -> bool:
        try:
            return (await self.admin.get("/health")).status_code == 200
        except httpx.TransportError:
            return False

    def base_url(self, source: str) -> str:
        return f"{self.url}/{source}"

    async def sources(self) -> dict[str, Any]:
        answer = await self.admin.get("/_admin/sources")
        answer.raise_for_status()
        return dict(answer.json()["sources"])

    async def counters(self, source: str) -> dict[str, int]:
        return dict((await self.sources())[source]["counters"])

    async def set(self, source: str, **changes: Any) -> dict[str, Any]:
        """Change a source's latency_ms, failure_rate or mode while the stub runs."""
        answer = await self.admin.patch(f"/_admin/sources/{source}", json=changes)
        answer.raise_for_status()
        return dict(answer.json())

    async def reset(self, *, config: bool = False) -> None:
        answer = await self.admin.post("/_admin/reset", json={"config": config})
        answer.raise_for_status()


@asynccontextmanager
async def running_stub(*flags: str, timeout: float = 30.0) -> AsyncIterator[StubServer]:
    """Start the stub with these flags, wait until it answers, kill it afterwards."""
    port = free_port()
    process = Process("stub", ["--port", str(port), *flags], name="stub").start()
    server = StubServer(process, port)
    try:
        deadline = time.monotonic() + timeout
        while not await server.healthy():
            if not process.running or time.monotonic() > deadline:
                raise AssertionError(f"the stub never answered /health\n{process.tail()}")
            await asyncio.sleep(0.05)
        yield server
    except BaseException:
        print(f"--- output of the stub\n{process.tail(80)}")
        raise
    finally:
        await server.admin.aclose()
        process.kill()
