"""The API app on a database of the test's own, driven through httpx.

``client`` talks to the app in-process (``ASGITransport``, lifespan started by
``LifespanManager``) with a key that has both scopes; ``reader`` and ``anonymous`` are
the same app with a read-only key and with none. ``live_url`` serves the same app with a
real uvicorn on a free port, for Server-Sent Events (which ``ASGITransport`` buffers).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
import uvicorn
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from api.app import create_app
from api.config import ApiSettings
from tests.conftest import test_settings
from tests.support import wait_until

WRITER_SECRET = "writer-secret-0123456789abcdefghijkl"
READER_SECRET = "reader-secret-0123456789abcdefghijkl"
API_KEYS = f"writer:{WRITER_SECRET}:read,write;reader:{READER_SECRET}:read"
WRITER = {"Authorization": f"Bearer {WRITER_SECRET}"}
READER = {"Authorization": f"Bearer {READER_SECRET}"}
METRICS_TOKEN = "scraper-token-0123456789abcdefghijklm"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}
BASE = "http://api.test"


def api_settings(**env: str) -> ApiSettings:
    values = {"MS8_API_KEYS": API_KEYS, "MS8_METRICS_TOKEN": METRICS_TOKEN,
              "MS8_API_SSE_PING_SECONDS": "0.2",
              "MS8_API_MAX_BODY_BYTES": "65536", **env}
    return ApiSettings.from_env(values, dev=False)


@pytest_asyncio.fixture
async def app(db_url: str) -> AsyncIterator[Starlette]:
    application = create_app(test_settings(db_url, MS8_ENV="production"), api_settings())
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


def client_for(app: Starlette, headers: dict[str, str] | None = None, *, base: str = BASE
               ) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base,
                             headers=headers or {})


@pytest_asyncio.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, WRITER) as c:
        yield c


@pytest_asyncio.fixture
async def reader(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, READER) as c:
        yield c


@pytest_asyncio.fixture
async def anonymous(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@pytest_asyncio.fixture
async def live_url(app: Starlette) -> AsyncIterator[str]:
    """The app (lifespan already running) behind a real uvicorn on a free local port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(
        app, lifespan="off", log_config=None, access_log=False, timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_until(lambda: server.started or task.done(), message="uvicorn start")
        if task.done():
            task.result()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()
