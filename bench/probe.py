"""When did a handler start? Each benchmark handler says so over UDP on loopback.

The latency scenario needs the wall-clock time at which a job's handler began, in the
worker process, for every system alike. A handler calls ``report_start(seq)`` first
thing: one datagram ``"<seq> <time.time()>"`` to the address in ``BENCH_PROBE_ADDR``
(no I/O wait, no database round trip, so it does not delay the job). The benchmark
process listens with ``StartProbe`` and pairs each start with the commit time of the
send that carried ``seq``. Both clocks are the same machine's ``time.time()``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

ENV = "BENCH_PROBE_ADDR"
_socket: socket.socket | None = None
_address: tuple[str, int] | None = None


def report_start(seq: object) -> None:
    """Called by a handler as it starts; a no-op when no probe listens."""
    global _socket, _address
    now = time.time()
    if _address is None:
        raw = os.environ.get(ENV)
        if not raw:
            return
        host, _, port = raw.rpartition(":")
        _address = (host, int(port))
        _socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    assert _socket is not None
    _socket.sendto(f"{seq} {now!r}".encode(), _address)


class StartProbe(asyncio.DatagramProtocol):
    """Collects ``{seq: start time}`` from handlers; ``env`` points a worker at it."""

    def __init__(self) -> None:
        self.starts: dict[str, float] = {}
        self.changed = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls) -> StartProbe:
        loop = asyncio.get_running_loop()
        probe = cls()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: probe, local_addr=("127.0.0.1", 0))
        probe._transport = transport
        return probe

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | None, int]) -> None:
        seq, _, at = data.decode().partition(" ")
        self.starts.setdefault(seq, float(at))
        self.changed.set()

    @property
    def env(self) -> dict[str, str]:
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return {ENV: f"{host}:{port}"}

    async def wait_for(self, seqs: set[str], timeout: float) -> None:
        """Until every seq has started; raises TimeoutError naming how many did not."""
        async def all_started() -> None:
            while not seqs <= self.starts.keys():
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(all_started(), timeout)
        except TimeoutError:
            missing = len(seqs - self.starts.keys())
            raise TimeoutError(f"{missing} of {len(seqs)} jobs never started") from None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
