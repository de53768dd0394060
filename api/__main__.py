"""``python -m api``: serve the API with uvicorn on ``MS8_API_HOST``:``PORT``
(``--help`` lists the settings it reads).

One process, one event loop (run several behind a load balancer to scale). On SIGTERM it
stops accepting, gives requests and open event streams ``MS8_API_SHUTDOWN_GRACE_SECONDS``
to end, closes the pool and exits 0. The HTTP protocol bounds each request head in size,
field count and time, and the time its body may take (``api/protocol.py``).
"""

from __future__ import annotations

import contextlib
import gc
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

import uvicorn

from api.app import create_app
from api.cli import build_parser
from api.config import ApiSettings
from api.context import ApiContext
from api.protocol import bounded_protocol
from shared import startup
from shared.logging import configure_logging, get_logger
from shared.settings import Settings
from shared.startup import open_checked


class Server(uvicorn.Server):
    """uvicorn's server, except that the database is opened and checked before it serves
    (so a refusal is one line, not a failed lifespan's traceback), and SIGTERM is an
    ordinary stop that exits 0 (uvicorn re-raises the signal after its graceful
    shutdown, which looks like a crash)."""

    def __init__(self, config: uvicorn.Config, ctx: ApiContext) -> None:
        super().__init__(config)
        self.ctx = ctx

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self.ctx.opened = await open_checked(self.ctx.shared, "api")
        await super().serve(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, less raising SIGTERM again once stopped: a SIGINT still ends the
        process as SIGINT does (KeyboardInterrupt), a SIGTERM is a stop like any other."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        received: list[int] = []

        def on_signal(sig: int, frame: FrameType | None) -> None:
            received.append(sig)
            self.handle_exit(sig, frame)

        original = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
        if signal.SIGINT in received:
            signal.raise_signal(signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)  # --help, or exit 2 for anything it does not know
    return startup.run("api", _main)


def _main() -> int:
    shared = Settings.from_env()
    settings = ApiSettings.from_env(dev=shared.dev)
    configure_logging("api", shared.log_level, shared.log_format)
    get_logger(__name__).info("api starting", host=settings.host, port=settings.port)
    app = create_app(shared, settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our structlog setup renders uvicorn's records too
        access_log=False,  # requests are counted in /metrics instead
        proxy_headers=True,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        lifespan="on",
        http=bounded_protocol(settings.max_header_bytes, settings.header_timeout_seconds,
                              settings.body_timeout_seconds),
    )
    server = Server(config, app.state.ctx)
    # What start made (modules, routes, schemas) lives as long as the process: out of the
    # collector's sight, a full collection, which the thousands of objects of a many-jobs
    # request bring about, walks only what requests made (about a third of such a
    # request's CPU went to walking the rest).
    gc.collect()
    gc.freeze()
    server.run(sockets=_dual_stack(settings.host, settings.port))
    return 0 if server.started else 1


def _dual_stack(host: str, port: int) -> list[socket.socket] | None:
    """For ``MS8_API_HOST=::``, one socket serving IPv6 and IPv4 alike (an IPv6-only
    private network and an IPv4 edge proxy both reach it); uvicorn's own ``::`` socket is
    IPv6 only. ``None``: let uvicorn bind ``host``."""
    if host.strip("[]") != "::":
        return None
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    sock.set_inheritable(True)
    return [sock]


if __name__ == "__main__":
    sys.exit(main())
