"""Keys, scopes and the no-key dev mode."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from api.app import create_app
from api.config import ApiSettings, parse_keys
from shared import queue as core
from shared.db import Database
from shared.settings import Settings, SettingsError
from tests.integration.api.conftest import (
    READER,
    READER_SECRET,
    SCRAPER,
    WRITER_SECRET,
    api_settings,
    client_for,
)

S1, S2 = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"


async def test_missing_or_wrong_key_is_401(anonymous: httpx.AsyncClient, db: Database) -> None:
    for headers in [{}, {"Authorization": "Bearer wrong-secret-0123456789abcdefghijk"},
                    {"Authorization": f"Basic {WRITER_SECRET}"}, {"X-API-Key": "nope"}]:
        response = await anonymous.post("/jobs", json={"queue": "q"}, headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert (await anonymous.get("/jobs", headers=headers)).status_code == 401
    assert await core.count_jobs(db) == {}


async def test_liveness_needs_no_key(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    for path in ["/metrics", "/openapi.json", "/queues", "/events"]:
        assert (await anonymous.get(path)).status_code == 401, path


async def test_readiness_needs_no_key_and_tells_a_stranger_only_the_status(
    anonymous: httpx.AsyncClient, reader: httpx.AsyncClient,
) -> None:
    response = await anonymous.get("/health/ready")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})
    wrong = await anonymous.get("/health/ready", headers={"Authorization": "Bearer nope"})
    assert wrong.json() == {"status": "ready"}
    detailed = (await reader.get("/health/ready")).json()
    assert detailed["status"] == "ready" and detailed["database"] == "ok"


async def test_the_scrapers_token_reads_metrics_and_nothing_else(app: Starlette) -> None:
    async with client_for(app, SCRAPER) as scraper:
        metrics = await scraper.get("/metrics")
        assert metrics.status_code == 200 and "ms8_api_database_up 1.0" in metrics.text
        for path in ["/jobs", "/queues", "/workers"]:
            response = await scraper.get(path)
            assert response.status_code == 403, path
            assert response.json()["code"] == "forbidden"
        assert (await scraper.post("/jobs", json={"queue": "q"})).status_code == 403
        assert (await scraper.get("/health/ready")).json() == {"status": "ready"}
    async with client_for(app, READER) as reader:
        assert (await reader.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MS8_METRICS_TOKEN": "short"}, "MS8_METRICS_TOKEN must be at least 32"),
        ({"MS8_METRICS_TOKEN": WRITER_SECRET}, "must differ from every API key"),
    ],
)
def test_a_bad_metrics_token_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        api_settings(**env)


@pytest.mark.parametrize(
    ("env", "dev", "host"),
    [
        ({}, True, "127.0.0.1"),
        ({"PORT": "8080"}, True, "0.0.0.0"),  # the platform routes to this port
        ({"PORT": "8080", "MS8_API_HOST": "127.0.0.1"}, True, "127.0.0.1"),
        ({}, False, "0.0.0.0"),
    ],
)
def test_the_api_listens_on_every_interface_when_the_platform_gives_a_port(
    env: dict[str, str], dev: bool, host: str,
) -> None:
    keys = {"MS8_API_KEYS": f"a:{S1}:read"}
    assert ApiSettings.from_env({**keys, **env}, dev=dev).host == host


def test_a_keyless_api_never_listens_beyond_this_machine_unless_told() -> None:
    """A platform deploy that forgot MS8_ENV gets PORT and no key: refused, not served."""
    with pytest.raises(SettingsError, match="without a key") as refused:
        ApiSettings.from_env({"PORT": "8080"}, dev=True)
    assert "MS8_API_KEYS" in str(refused.value) and "MS8_API_HOST=127.0.0.1" in str(refused.value)
    assert ApiSettings.from_env({"PORT": "8080", "MS8_API_HOST": "127.0.0.1"}, dev=True).keys == ()
    # Chosen explicitly (compose, whose port is published on the host's loopback only).
    assert ApiSettings.from_env({"PORT": "8080", "MS8_API_HOST": "0.0.0.0"}, dev=True).host == \
        "0.0.0.0"


async def test_read_key_cannot_write(reader: httpx.AsyncClient, db: Database) -> None:
    assert (await reader.get("/jobs")).status_code == 200
    for method, path in [("POST", "/jobs"), ("POST", "/jobs/1/cancel"), ("DELETE", "/jobs/1"),
                         ("PUT", "/queues/q"), ("POST", "/queues/q/pause")]:
        response = await reader.request(method, path, json={"queue": "q"})
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "forbidden"
        assert "write" in response.json()["message"]
    assert await core.count_jobs(db) == {}


async def test_x_api_key_header(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.post("/jobs", json={"queue": "q"},
                                    headers={"X-API-Key": WRITER_SECRET})
    assert response.status_code == 201
    assert (await anonymous.get("/jobs", headers={"X-API-Key": READER_SECRET})).status_code == 200


async def test_dev_mode_without_keys(db_url: str) -> None:
    from tests.conftest import test_settings

    shared = test_settings(db_url)
    assert shared.dev
    app = create_app(shared, ApiSettings.from_env({}, dev=True))
    async with LifespanManager(app), client_for(app, base="http://localhost:8000") as client:
        assert (await client.post("/jobs", json={"queue": "q"})).status_code == 201
        cross_site = await client.post("/jobs", json={"queue": "q"},
                                       headers={"Origin": "http://evil.example"})
        assert cross_site.status_code == 403
        assert cross_site.json()["code"] == "csrf_failed"


def test_production_needs_a_key() -> None:
    with pytest.raises(SettingsError, match="MS8_API_KEYS"):
        ApiSettings.from_env({"MS8_ENV": "production"})
    shared = Settings.from_env({"MS8_ENV": "production", "DATABASE_URL": "postgresql://h/d"})
    with pytest.raises(SettingsError, match="MS8_API_KEYS"):
        create_app(shared)


@pytest.mark.parametrize("raw, message", [
    ("a:short:read", "at least 32 characters outside dev"),
    (f"a:{S1}:admin", "scopes"),
    (f"a:{S1}", "name:secret"),
    (f"a b:{S1}:read", "key name"),
    (f"a:{S1}:read;a:{S2}:read", "twice"),
    (f"a:{S1}:read;b:{S1}:read", "another key"),
])
def test_bad_key_settings(raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        parse_keys(raw)
    assert S1 not in str(caught.value)


def test_dev_takes_shorter_secrets_than_production() -> None:
    assert parse_keys("a:0123456789abcdef:read", dev=True)
    with pytest.raises(SettingsError, match="at least 32") as caught:
        ApiSettings.from_env({"MS8_API_KEYS": "a:0123456789abcdef0123456789abcde:read"},
                             dev=False)
    assert "0123456789abcdef" not in str(caught.value)


def test_keys_never_print_their_secret() -> None:
    [key] = parse_keys(f"ci:{S1}:write")
    assert key.scopes == {"read", "write"}
    assert S1 not in repr(key)
    settings = ApiSettings.from_env({"MS8_API_KEYS": f"ci:{S1}:write"}, dev=False)
    assert S1 not in repr(settings)
