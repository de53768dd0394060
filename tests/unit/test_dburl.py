"""Database URLs: every libpq form parses to the same place asyncpg will connect to, and
a bad one is one line naming the variable, never the password."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from shared import dburl
from shared.dburl import DatabaseUrlError, parse
from shared.settings import Settings, SettingsError


def where(url: str) -> tuple[object, ...]:
    parsed = parse(url)
    return parsed.hosts, parsed.ports, parsed.user, parsed.password, parsed.database


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:secret@db.example.com:6543/ms8",
         (("db.example.com",), (6543,), "app", "secret", "ms8")),
        ("postgres://app@db/ms8", (("db",), (None,), "app", None, "ms8")),
        ("POSTGRESQL://app@db/ms8", (("db",), (None,), "app", None, "ms8")),
        # The example: a Unix socket directory in the host parameter.
        ("postgresql://app@/ms8?host=/var/run/postgresql",
         (("/var/run/postgresql",), (None,), "app", None, "ms8")),
        ("postgresql://%2Fvar%2Frun%2Fpostgresql:5433/ms8",
         (("/var/run/postgresql",), (5433,), None, None, "ms8")),
        ("postgresql://app@[::1]:5433/ms8", (("::1",), (5433,), "app", None, "ms8")),
        ("postgresql://[2001:db8::7]/ms8", (("2001:db8::7",), (None,), None, None, "ms8")),
        ("postgresql://app:p%40ss%3Aw%2Frd%25%23%3F@db/ms8",
         (("db",), (None,), "app", "p@ss:w/rd%#?", "ms8")),
        # libpq lets query parameters override the URL's parts.
        ("postgresql://ignored@localhost/ignored?host=db2&port=7000&user=app&dbname=ms8"
         "&password=pw", (("db2",), (7000,), "app", "pw", "ms8")),
        ("postgresql://a:1,b:2,[::1]:3/ms8", (("a", "b", "::1"), (1, 2, 3), None, None, "ms8")),
        ("postgresql://a,b/ms8?port=5433", (("a", "b"), (5433, 5433), None, None, "ms8")),
        ("postgresql:///ms8", ((), (), None, None, "ms8")),
        ("postgresql://db", (("db",), (None,), None, None, None)),
        ("host=/tmp port=5433 dbname=ms8 user=app password='a b\\'c'",
         (("/tmp",), (5433,), "app", "a b'c", "ms8")),
    ],
)
def test_each_libpq_form_parses_to_its_parts(url: str, expected: tuple[object, ...]) -> None:
    assert where(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app@/ms8?host=/var/run/postgresql",
        "postgresql://app:p%40ss%3Aw%2Frd%25%23%3F@[::1]:5433/ms8?sslmode=require",
        "postgresql://a:1,b,[::1]:3/ms8?target_session_attrs=read-write&application_name=x",
        "host=/tmp port=5433 dbname=ms8 user=app password='a b\\'c'",
    ],
)
def test_the_canonical_dsn_parses_back_to_the_same_url(url: str) -> None:
    first = parse(url)
    assert parse(first.dsn) == first


def test_the_canonical_dsn_puts_a_socket_in_the_host_asyncpg_reads_first() -> None:
    # asyncpg prefers the URL's host to a host= parameter; libpq does the opposite.
    assert parse("postgresql://app@localhost/ms8?host=/run/pg").dsn == (
        "postgresql://app@%2Frun%2Fpg/ms8")


def test_tls_parameters_reach_asyncpg(tmp_path: Path) -> None:
    ca = tmp_path / "root.crt"
    ca.write_text("not checked here")
    url = parse(f"postgresql://app@db/ms8?sslmode=verify-full&sslrootcert={ca}"
                "&ssl_min_protocol_version=TLSv1.2&target_session_attrs=primary")
    assert dict(url.params) == {"sslmode": "verify-full", "sslrootcert": str(ca),
                                "ssl_min_protocol_version": "TLSv1.2",
                                "target_session_attrs": "primary"}
    assert f"sslrootcert={str(ca).replace('/', '%2F')}" in url.dsn


def test_sslmode_require_needs_no_certificate() -> None:
    assert parse("postgresql://app@db/ms8?sslmode=require").connect_kwargs() == {
        "dsn": "postgresql://app@db/ms8?sslmode=require"}


def test_system_roots_become_a_verifying_context() -> None:
    kwargs = parse("postgresql://app@db/ms8?sslrootcert=system").connect_kwargs()
    assert kwargs["dsn"] == "postgresql://app@db/ms8"
    context = kwargs["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_connect_timeout_is_seconds_and_zero_means_the_default() -> None:
    assert parse("postgresql://db/x?connect_timeout=7").connect_kwargs()["timeout"] == 7.0
    assert parse("postgresql://db/x?connect_timeout=1").connect_timeout == 2.0  # libpq's floor
    assert parse("postgresql://db/x?connect_timeout=0").connect_timeout is None


def test_client_knobs_asyncpg_lacks_are_dropped_and_server_settings_kept() -> None:
    url = parse("postgresql://db/x?keepalives=1&keepalives_idle=30&channel_binding=prefer"
                "&application_name=app&options=-c%20statement_timeout%3D5s"
                "&client_encoding=UTF8&statement_timeout=1000")
    assert dict(url.params) == {"application_name": "app",
                                "options": "-c statement_timeout=5s",
                                "statement_timeout": "1000"}


def test_str_says_where_without_the_password() -> None:
    url = parse("postgresql://app:hunter2@[::1]:5433,db/ms8")
    assert str(url) == "app@[::1]:5433,db/ms8"
    assert "hunter2" not in repr(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://app@db/ms8", "must start with postgresql://"),
        ("not a url", "must look like postgresql://"),
        ("", "is empty"),
        ("postgresql://db:port/x", "port must be a number"),
        ("postgresql://db:70000/x", "port must be a number"),
        ("postgresql://a,b/x?port=1,2,3", "3 ports given for 2 host"),
        ("postgresql://::1/x", "IPv6 host in brackets"),
        ("postgresql://[::1/x", "must look like [::1]"),
        ("postgresql://db/x?sslmode=requir", "sslmode must be one of"),
        ("postgresql://db/x?sslrootcert=/no/such/file.crt", "is not a readable file"),
        ("postgresql://db/x?sslrootcert=system&sslmode=require", "needs sslmode=verify-full"),
        ("postgresql://db/x?ssl_min_protocol_version=SSLv3", "must be one of TLSv1"),
        ("postgresql://db/x?target_session_attrs=master", "target_session_attrs"),
        ("postgresql://db/x?connect_timeout=soon", "connect_timeout must be whole seconds"),
        ("postgresql://db/x?channel_binding=require", "channel_binding=require is not"),
        ("postgresql://db/x?hostaddr=10.0.0.1", "hostaddr is not supported"),
        ("postgresql://db/x?sslmode=require&sslmode=disable", "gives sslmode twice"),
        ("postgresql://db/x%zz", "not followed by two hex digits"),
        ("host=db dbname='ms8", "lacks its closing quote"),
    ],
)
def test_a_bad_url_is_one_line_naming_the_part(url: str, message: str) -> None:
    with pytest.raises(DatabaseUrlError, match="DATABASE_URL") as error:
        parse(url)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:hunter2/x@db/ms8",      # '/' in the password, not encoded
        "postgresql://app:hun?ter2@db/ms8",       # '?'
        "postgresql://app:hunter2#@db/ms8",       # '#'
        "postgresql://app:hunter2:hunter2@db:x/ms8",
        "postgresql://app:hunter2@db/ms8?password=hunter2%",
        "user=app password=hunter2 hunter2",
    ],
)
def test_a_password_that_breaks_the_url_is_never_echoed(url: str) -> None:
    with pytest.raises(DatabaseUrlError) as error:
        parse(url)
    assert "hunter2" not in str(error.value)


def test_settings_keep_the_canonical_dsn_and_name_the_variable() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://app@/ms8?host=/run/pg",
                                  "DATABASE_DIRECT_URL": "postgres://app@[::1]/ms8"})
    assert settings.database_url == "postgresql://app@%2Frun%2Fpg/ms8"
    assert settings.direct_url == "postgresql://app@[::1]/ms8"
    with pytest.raises(SettingsError, match="^DATABASE_DIRECT_URL: sslmode"):
        Settings.from_env({"DATABASE_DIRECT_URL": "postgresql://db/x?sslmode=on"})


def test_connect_kwargs_parses_any_accepted_url() -> None:
    assert dburl.connect_kwargs("postgresql://db/x") == {"dsn": "postgresql://db/x"}
