"""``python -m api``: serve the API with uvicorn on ``MS8_API_HOST``:``PORT``.

One process, one event loop (run several behind a load balancer to scale). Open event
streams get ``MS8_API_SHUTDOWN_GRACE_SECONDS`` to end when the process is asked to stop.
"""

from __future__ import annotations

import sys

import uvicorn

from api.app import create_app
from api.config import ApiSettings
from shared.logging import configure_logging, get_logger
from shared.settings import Settings, SettingsError


def main() -> int:
    try:
        shared = Settings.from_env()
        settings = ApiSettings.from_env(dev=shared.dev)
    except SettingsError as error:
        print(f"ms8-jobs api: {error}", file=sys.stderr)
        return 2
    configure_logging("api", shared.log_level, shared.log_format)
    get_logger(__name__).info("api starting", host=settings.host, port=settings.port)
    uvicorn.run(
        create_app(shared, settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # our structlog setup renders uvicorn's records too
        access_log=False,  # requests are counted in /metrics instead
        proxy_headers=True,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
