"""Hostile input to the API in-process: bodies built to cost CPU, malformed headers and
ids meant to reach an unexpected error. Each is a 4xx that writes nothing, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from api.app import create_app
from shared import queue as core
from shared.db import Database
from tests.conftest import test_settings as settings_for
from tests.integration.api.conftest import WRITER, api_settings, client_for

MIB = 1024 * 1024


@pytest_asyncio.fixture
async def roomy(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A writer on an API that takes bodies of 4 MiB and a bit, as shipped."""
    app = create_app(settings_for(db_url, MS8_ENV="production"),
                     api_settings(MS8_API_MAX_BODY_BYTES=str(4 * MIB + 4096)))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30), \
            client_for(app, WRITER) as client:
        yield client


def _tiny_items(wrap: object) -> bytes:
    """About 4 MiB: two million one-digit items where the job data goes."""
    marker = '"@@"'
    text = orjson.dumps(wrap).decode().replace(marker, "[" + ",".join(["0"] * 1_999_990) + "]")
    assert len(text) < 4 * MIB
    return text.encode()


@pytest.mark.parametrize("path, body", [
    ("/jobs", {"queue": "q", "data": "@@"}),
    ("/jobs/bulk", {"jobs": [{"queue": "q", "data": "@@"}]}),
    ("/batches", {"jobs": [{"queue": "q", "data": "@@"}]}),
    ("/schedules", {"name": "s", "cron": "@daily", "queue": "q", "data": "@@"}),
])
async def test_millions_of_tiny_items_are_refused_before_parsing(
        roomy: httpx.AsyncClient, db: Database, path: str, body: object) -> None:
    response = await roomy.post(path, content=_tiny_items(body),
                                headers={"content-type": "application/json"})
    # Parsed, the data would be refused by its 1 MiB limit as invalid_body (422): a 413
    # naming the values says it was counted, not parsed.
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "body_too_large"
    assert "JSON values" in response.json()["message"]
    assert await core.count_jobs(db) == {}
    assert all(s.name != "s" for s in await core.list_schedules(db))


async def test_many_ordinary_jobs_in_one_body_still_go(roomy: httpx.AsyncClient) -> None:
    jobs = [{"queue": "q", "data": {"user_role": i, "tags": ["a", "b"]}} for i in range(1000)]
    response = await roomy.post("/jobs/bulk", json={"jobs": jobs})
    assert response.status_code == 201, response.text
