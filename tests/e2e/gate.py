"""A gate a test holds runs at: each ``gated`` run (``tests.e2e.gated_handlers``, in a
worker process) connects and waits until the test calls ``open()``. Kept apart from the
handler module, so that the test process never registers the handler itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Gate:
    """The test's side: holds every ``gated`` run that connects until ``open()``."""

    def __init__(self) -> None:
        self.port = 0
        self.waiting: list[asyncio.StreamWriter] = []

    def open(self) -> None:
        for writer in self.waiting:
            writer.write(b"!")

    async def _held(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.waiting.append(writer)


@contextlib.asynccontextmanager
async def gate() -> AsyncIterator[Gate]:
    held = Gate()
    server = await asyncio.start_server(held._held, "127.0.0.1", 0)
    held.port = server.sockets[0].getsockname()[1]
    try:
        yield held
    finally:
        for writer in held.waiting:
            writer.close()
        server.close()
