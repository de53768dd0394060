"""A tiny HTTP/1.1 server standing in for the sources in the collector's tests.

``GET /{source}/user-roles/{id}`` answers according to the source's mode; it counts the
requests per source and the most it had in flight at once. Keep-alive is honoured, as
the collector's client reuses connections. A ``gated`` source answers once the test sets
``gate``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import orjson

MODES = ("ok", "503", "404", "hang", "drip", "garbage", "list", "huge", "huge-chunked",
         "slow", "gated", "signed-length", "arabic-length")
# A Content-Length that int() would read as the body's length, and no HTTP peer should.
ODD_LENGTHS = {"signed-length": lambda n: b"+%d" % n,
               "arabic-length": lambda n: str(n).translate(
                   {ord(d): chr(0x0660 + int(d)) for d in "0123456789"}).encode()}


class FakeSources:
    def __init__(self) -> None:
        self.modes: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.most_in_flight: Counter[str] = Counter()
        self.slow_seconds = 0.1
        self.gate = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def base_url(self, source: str) -> str:
        return f"http://127.0.0.1:{self.port}/{source}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the server and every connection still open (hanging answers included)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                _, source, _, user_role = path.split("/", 3)
                await self._answer(writer, source, int(user_role))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, source: str, user_role: int) -> None:
        mode = self.modes.get(source, "ok")
        self.requests[source] += 1
        self.in_flight[source] += 1
        self.most_in_flight[source] = max(self.most_in_flight[source], self.in_flight[source])
        try:
            if mode == "hang":
                await asyncio.Event().wait()
            if mode == "slow":
                await asyncio.sleep(self.slow_seconds)
            if mode == "gated":
                await self.gate.wait()
            if mode == "drip":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: 100000\r\n\r\n")
                while True:
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(0.05)
            if mode in ODD_LENGTHS:
                body = orjson.dumps({"source": source, "user_role_id": user_role})
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: " + ODD_LENGTHS[mode](len(body)) + b"\r\n\r\n"
                             + body)
                await writer.drain()
                return
            if mode == "huge-chunked":  # no length said: the client finds out as it reads
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"transfer-encoding: chunked\r\n\r\n")
                chunk = b"a" * 65536
                for _ in range(16):
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                return
            status, body = {
                "503": (503, b'{"error": "down"}'),
                "404": (404, b'{"error": "unknown user-role"}'),
                "garbage": (200, b"<html>oops"),
                "list": (200, b"[1, 2]"),
                "huge": (200, b'{"x": "' + b"a" * 300_000 + b'"}'),
            }.get(mode, (200, orjson.dumps({"source": source, "user_role_id": user_role})))
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                         f"content-length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
        finally:
            self.in_flight[source] -= 1


@contextlib.asynccontextmanager
async def fake_sources() -> AsyncIterator[FakeSources]:
    server = FakeSources()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
