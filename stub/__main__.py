"""``python -m stub``: serve the stand-in microservices with uvicorn.

    python -m stub [--host 127.0.0.1] [--port 8090] [--sources a,b,c]
                   [--latency-ms 50] [--failure-rate 0] [--seed 0]
                   [--source NAME:latency_ms=200,failure_rate=0.5,mode=hang ...]

``--latency-ms`` and ``--failure-rate`` are every source's defaults; ``--source`` overrides
them for one (repeatable). ``MS8_STUB_PORT`` sets the default port. Numbers are written
in ASCII digits (``shared.numerals``): ``--port ٨٠٩٠`` or ``--seed +1`` is refused.
SIGTERM stops it with status 0 at once: requests it holds are answered 503, drips finish.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn

from shared import numerals
from shared.logging import configure_logging, get_logger
from shared.settings import SettingsError, env_str
from stub.app import StubApp
from stub.config import (
    DEFAULT_SOURCES,
    MODES,
    InvalidSetting,
    SourceConfig,
    parse_override,
    parse_text,
)
from stub.state import Sources


class Server(uvicorn.Server):
    """uvicorn's server, telling the app the moment it starts to stop, so that requests
    held open (hang, drip) end at once instead of delaying the shutdown."""

    def __init__(self, config: uvicorn.Config, app: StubApp) -> None:
        super().__init__(config)
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self.loop is not None:  # a signal handler: hand the event to the loop
            self.loop.call_soon_threadsafe(self.app.closing.set)


def parser(env: dict[str, str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stub", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=_port, default=_env_port(env),
                   help="port (MS8_STUB_PORT, else 8090)")
    p.add_argument("--sources", default=",".join(DEFAULT_SOURCES),
                   help=f"the source names, comma-separated ({','.join(DEFAULT_SOURCES)})")
    p.add_argument("--latency-ms", default="50",
                   help="every source's latency before it answers (50)")
    p.add_argument("--failure-rate", default="0",
                   help="every source's share of requests answered 503, 0..1 (0)")
    p.add_argument("--seed", type=_whole, default=0, help="seed of the failure draws (0)")
    p.add_argument("--source", action="append", default=[], metavar="NAME:KEY=VALUE,…",
                   help=f"one source's latency_ms, failure_rate or mode ({'|'.join(MODES)}); "
                        "repeatable")
    return p


def sources_from(args: argparse.Namespace) -> Sources:
    """The sources the flags describe; InvalidSetting names a bad flag."""
    names = [name.strip() for name in args.sources.split(",") if name.strip()]
    if not names:
        raise InvalidSetting("sources", "name at least one source")
    defaults = SourceConfig().changed({
        "latency_ms": parse_text("latency_ms", args.latency_ms),
        "failure_rate": parse_text("failure_rate", args.failure_rate)})
    configs = dict.fromkeys(names, defaults)
    for text in args.source:
        name, changes = parse_override(text)
        if name not in configs:
            raise InvalidSetting("source", f"{name!r} is not one of --sources {args.sources}")
        configs[name] = configs[name].changed(changes)
    return Sources(configs, seed=args.seed)


def _whole(text: str) -> int:
    try:
        return numerals.whole(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def _port(text: str) -> int:
    port = _whole(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"must be a port, 0 to 65535, got {text!r}")
    return port


def _env_port(env: dict[str, str]) -> int:
    text = env_str(env, "MS8_STUB_PORT")
    if text is None:
        return 8090
    try:
        return _port(text)
    except argparse.ArgumentTypeError as error:
        raise SettingsError(f"MS8_STUB_PORT {error}") from None


def main(argv: Sequence[str] | None = None) -> int:
    env = dict(os.environ)
    try:
        args = parser(env).parse_args(argv)
        sources = sources_from(args)
    except (SettingsError, InvalidSetting) as error:
        print(f"ms8-jobs stub: {error}", file=sys.stderr)
        return 2
    configure_logging("stub", env_str(env, "MS8_LOG_LEVEL", "info") or "info",
                      env_str(env, "MS8_LOG_FORMAT", "auto") or "auto")
    get_logger(__name__).info("stub starting", host=args.host, port=args.port,
                              seed=args.seed, sources={n: s.config.as_dict()
                                                       for n, s in sources.by_name.items()})
    app = StubApp(sources)
    server = Server(uvicorn.Config(
        app, host=args.host, port=args.port, lifespan="off",
        log_config=None, access_log=False,  # one line per config change, none per request
        timeout_graceful_shutdown=1, backlog=4096,
        # Longer than any client's idle expiry (httpx: 5 s), so the client always closes an
        # idle connection first and never sends a request on one the stub is closing.
        timeout_keep_alive=75,
    ), app)
    # uvicorn re-raises SIGTERM once it has shut down, which would read as a crash: once
    # its own handlers are gone, that signal is ignored and the status is ours.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
