"""The API's pure parts, without a database: timestamps, schema validation, cursors,
sessions."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import orjson
import pytest

from api import cursor, rfc3339, throttle
from api.config import ApiSettings
from api.errors import ApiError
from api.hosts import LOOPBACK, hostname, parse_allowed
from api.schemas import components, json_value
from api.session import Sessions, _unb64
from api.validator import SchemaViolation, Validator


@pytest.mark.parametrize("text, expected", [
    ("2030-01-02T03:04:05Z", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2030-01-02t03:04:05z", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2030-01-02T03:04:05.5+02:00", datetime(2030, 1, 2, 1, 4, 5, 500000, tzinfo=UTC)),
    ("2016-12-31T23:59:60Z", datetime(2017, 1, 1, tzinfo=UTC)),
    ("0001-01-01T00:00:00+05:00", datetime.min.replace(tzinfo=UTC)),
    ("9999-12-31T23:00:00-05:00", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
])
def test_rfc3339_accepts(text: str, expected: datetime) -> None:
    assert rfc3339.parse(text) == expected


@pytest.mark.parametrize("text", ["2030-01-02", "2030-01-02T03:04:05", "2030-02-30T00:00:00Z",
                                  "2030-01-02T24:00:00Z", "2030-01-02T03:04:05+24:00",
                                  "2030-01-02T03:04:05Z\n", "tomorrow"])
def test_rfc3339_refuses(text: str) -> None:
    assert rfc3339.parse(text) is None


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(components(100), {"JsonValue": json_value})


def test_patterns_mean_what_ecma_means(validator: Validator) -> None:
    spec = {"$ref": "#/components/schemas/JobSpec"}
    assert validator.validate(spec, {"queue": "mail"}, "body") == {"queue": "mail"}
    with pytest.raises(SchemaViolation) as caught:
        validator.validate(spec, {"queue": "mail\n"}, "body")
    assert caught.value.field == "queue"


def test_integral_floats_are_integers(validator: Validator) -> None:
    spec = {"$ref": "#/components/schemas/JobSpec"}
    assert validator.validate(spec, {"queue": "q", "priority": 3.0}, "body")["priority"] == 3
    with pytest.raises(SchemaViolation):
        validator.validate(spec, {"queue": "q", "priority": 3.5}, "body")
    with pytest.raises(SchemaViolation):
        validator.validate(spec, {"queue": "q", "priority": True}, "body")


def test_unknown_fields_and_nesting(validator: Validator) -> None:
    bulk = {"$ref": "#/components/schemas/BulkSend"}
    with pytest.raises(SchemaViolation) as caught:
        validator.validate(bulk, {"jobs": [{"queue": "q"}, {"queue": "q", "x": 1}]}, "body")
    assert (caught.value.field, caught.value.unknown) == ("jobs[1].x", True)
    deep: object = "\x00"
    for _ in range(5000):  # deeper than Python's recursion limit: walked iteratively
        deep = [deep]
    with pytest.raises(SchemaViolation):
        json_value(deep, "data")


def test_every_schema_keyword_is_enforced() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        Validator({"X": {"type": "string", "format": "email", "contentEncoding": "base64"}})


def test_the_schemas_offer_the_cores_job_options() -> None:
    """The options are named once, in the core; the documents offer exactly those."""
    from shared.queue import SCHEDULE_JOB_OPTIONS, SEND_OPTIONS

    schemas = components(max_jobs=10)
    assert set(schemas["JobSpec"]["properties"]) == {"queue", "data", *SEND_OPTIONS}
    assert set(schemas["JobOptions"]["properties"]) == set(SCHEDULE_JOB_OPTIONS)
    assert "delay" in SEND_OPTIONS and "delay" not in SCHEDULE_JOB_OPTIONS


def test_cursor_round_trip() -> None:
    assert cursor.decode(cursor.encode(12345)) == 12345
    assert cursor.next_cursor([9, 8, 7], 3) == cursor.encode(7)
    assert cursor.next_cursor([9, 8], 3) is None
    for bad in ["", "123", "gggggggggggggggg", "8000000000000000", "0000000000000001 "]:
        with pytest.raises(ApiError) as caught:
            cursor.decode(bad)
        assert caught.value.code == "bad_cursor"


SECRET_A = "0123456789abcdef0123456789abcdef"


def _sessions(secret: str = SECRET_A, **env: str) -> tuple[Sessions, ApiSettings]:
    settings = ApiSettings.from_env({"MS8_API_KEYS": f"a:{secret}:read", **env}, dev=False)
    return Sessions(settings), settings


def test_sessions_are_signed_and_expire() -> None:
    sessions, settings = _sessions()
    [key] = settings.keys
    cookie = sessions.issue(key)
    session = sessions.verify(cookie)
    assert session is not None and session.key_name == "a"
    assert sessions.check_csrf(session, sessions.csrf_token(session))
    assert not sessions.check_csrf(session, "x" * 32)
    payload, signature = cookie.split(".")
    assert sessions.verify(f"{payload}.{signature[:-2]}AA") is None
    assert sessions.verify("garbage") is None
    other, _ = _sessions("fedcba9876543210fedcba9876543210")
    assert other.verify(cookie) is None  # another deployment's secret
    sessions.max_age = -1
    assert sessions.verify(sessions.issue(key)) is None


def test_a_revoked_session_is_over() -> None:
    """Revoked as every process hears it: a ``sessions`` notification."""
    sessions, settings = _sessions()
    [key] = settings.keys
    kept, dropped = sessions.issue(key), sessions.issue(key)
    session = sessions.verify(dropped)
    assert session is not None
    for odd in ({}, {"id": session.nonce}, {"id": 7, "expires": session.expires},
                {"id": session.nonce, "expires": "soon"}):
        sessions.revoked.heard(odd)
    assert sessions.verify(dropped) is not None and len(sessions.revoked) == 0
    sessions.revoked.heard({"id": session.nonce, "expires": session.expires})
    assert sessions.verify(dropped) is None
    assert sessions.verify(kept) is not None
    # A revocation past its session's expiry is forgotten: the cookie is over anyway.
    sessions.revoked.add("long-gone", 1.0)
    assert "long-gone" not in sessions.revoked and len(sessions.revoked) == 1


def test_a_cookie_carries_nothing_of_the_secret() -> None:
    """Only the name, the expiry and a random id: nothing to test guesses against but the
    signature, made with a key stretched from the secret."""
    sessions, settings = _sessions()
    payload = orjson.loads(_unb64(sessions.issue(settings.keys[0]).split(".")[0]))
    assert set(payload) == {"n", "e", "r"}
    assert payload["n"] == "a"
    for digest in (hashlib.sha256(SECRET_A.encode()).hexdigest()[:16], SECRET_A):
        assert digest not in str(payload)
    with_secret, _ = _sessions(MS8_API_SESSION_SECRET="s" * 40)
    assert with_secret.verify(sessions.issue(settings.keys[0])) is None


@pytest.mark.parametrize("host, name", [
    ("localhost:8000", "localhost"), ("[::1]:8000", "::1"), ("[::1]", "::1"), ("::1", "::1"),
    ("Example.COM.", "example.com"), ("127.0.0.1", "127.0.0.1"), ("[", ""), ("", "")])
def test_hostname_of_a_host_header(host: str, name: str) -> None:
    assert hostname(host) == name


def test_allowed_hosts_by_mode() -> None:
    assert parse_allowed(None, dev=False, bind_host="0.0.0.0") is None
    assert parse_allowed(None, dev=True, bind_host="0.0.0.0") == LOOPBACK
    assert parse_allowed(None, dev=True, bind_host="devbox") == LOOPBACK | {"devbox"}
    assert parse_allowed("a.example, B.example:443", dev=True, bind_host="x") == {
        "a.example", "b.example"}
    assert parse_allowed("*", dev=True, bind_host="x") is None


def test_failed_authentications_refill_at_their_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(throttle.time, "monotonic", lambda: now[0])
    limit = throttle.FailureThrottle(per_minute=2)
    assert limit.wait("a") == 0
    limit.failed("a")
    assert limit.wait("a") == 0
    limit.failed("a")
    assert limit.wait("a") == pytest.approx(30)
    assert limit.wait("b") == 0
    now[0] += 29
    assert limit.wait("a") == pytest.approx(1)
    now[0] += 1
    assert limit.wait("a") == 0
