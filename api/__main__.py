"""``python -m api``: serve the API with uvicorn on ``MS8_API_HOST``:``PORT``.

One process, one event loop (run several behind a load balancer to scale). On SIGTERM it
stops accepting, gives requests and open event streams ``MS8_API_SHUTDOWN_GRACE_SECONDS``
to end, closes the pool and exits 0. The HTTP protocol bounds each request head in size,
field count and time (``api/protocol.py``) before the application sees it.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

import uvicorn

from api.app import create_app
from api.config import ApiSettings
from api.protocol import bounded_protocol
from shared.logging import configure_logging, get_logger
from shared.settings import Settings, SettingsError


class Server(uvicorn.Server):
    """uvicorn's server, except that SIGTERM is an ordinary stop that exits 0 (uvicorn
    re-raises the signal after its graceful shutdown, which looks like a crash)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:
            self._captured_signals = [s for s in self._captured_signals if s != sig]


def main() -> int:
    try:
        shared = Settings.from_env()
        settings = ApiSettings.from_env(dev=shared.dev)
    except SettingsError as error:
        print(f"ms8-jobs api: {error}", file=sys.stderr)
        return 2
    configure_logging("api", shared.log_level, shared.log_format)
    get_logger(__name__).info("api starting", host=settings.host, port=settings.port)
    config = uvicorn.Config(
        create_app(shared, settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # our structlog setup renders uvicorn's records too
        access_log=False,  # requests are counted in /metrics instead
        proxy_headers=True,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        lifespan="on",
        http=bounded_protocol(settings.max_header_bytes, settings.header_timeout_seconds),
    )
    server = Server(config)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
