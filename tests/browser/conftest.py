"""A real browser (Debian's Chromium, driven by Playwright) against the app on a real
uvicorn. Skipped when Playwright or Chromium is missing, unless MS8_REQUIRE_BROWSER=1
(CI), where a missing browser fails the run instead."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from api.app import create_app
from tests.integration.api.conftest import api_settings, live_url  # noqa: F401  (fixture)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def chromium_path() -> str:
    path = os.environ.get("MS8_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    required = os.environ.get("MS8_REQUIRE_BROWSER") == "1"
    try:
        import playwright  # noqa: F401
    except ImportError:
        if required:
            pytest.fail("MS8_REQUIRE_BROWSER=1 but Playwright is not installed")
        pytest.skip("Playwright is not installed (pip install -e '.[browser]')")
    if not os.access(path, os.X_OK):
        if required:
            pytest.fail(f"MS8_REQUIRE_BROWSER=1 but there is no Chromium at {path}")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return path


@pytest_asyncio.fixture
async def app(db_url: str) -> AsyncIterator[Starlette]:
    """The app over plain http on localhost: session cookies without the Secure flag."""
    from tests.conftest import test_settings

    application = create_app(test_settings(db_url, MS8_ENV="production"),
                             api_settings(MS8_API_SECURE_COOKIES="false"))
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[object]:
    path = chromium_path()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()
