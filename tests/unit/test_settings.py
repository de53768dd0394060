"""Settings: defaults, and errors that name the variable."""

from __future__ import annotations

import pytest

from shared.settings import Settings, SettingsError


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert (settings.schema, settings.env, settings.auto_migrate) == ("ms8jobs", "dev", True)
    assert settings.statement_cache


def test_processes_migrate_by_themselves_only_in_dev() -> None:
    assert Settings.from_env({"MS8_ENV": "dev"}).auto_migrate
    production = {"MS8_ENV": "production", "DATABASE_URL": "postgresql://db/ms8"}
    assert not Settings.from_env(production).auto_migrate
    assert Settings.from_env({**production, "MS8_AUTO_MIGRATE": "true"}).auto_migrate
    assert not Settings.from_env({"MS8_AUTO_MIGRATE": "false"}).auto_migrate


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL"),
        ({"DATABASE_DIRECT_URL": "not a url"}, "DATABASE_DIRECT_URL"),
        ({"MS8_SCHEMA": "Bad-Schema"}, "MS8_SCHEMA"),
        ({"MS8_POOL_MAX": "many"}, "MS8_POOL_MAX"),
        ({"MS8_POOL_MAX": "0"}, "MS8_POOL_MAX"),
        ({"MS8_POOL_MIN": "5", "MS8_POOL_MAX": "2"}, "MS8_POOL_MAX"),
        ({"MS8_PGBOUNCER": "maybe"}, "MS8_PGBOUNCER"),
        ({"MS8_CONNECT_TIMEOUT": "nan"}, "MS8_CONNECT_TIMEOUT"),
        ({"MS8_ENV": "staging"}, "MS8_ENV"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)


def test_the_error_does_not_echo_a_password() -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"DATABASE_URL": "mysql://user:hunter2@db/x"})
    assert "hunter2" not in str(error.value)


def test_pgbouncer_mode_turns_off_prepared_statement_cache() -> None:
    assert not Settings.from_env({"MS8_PGBOUNCER": "true"}).statement_cache


def test_outside_dev_a_database_url_is_required() -> None:
    with pytest.raises(SettingsError, match="^DATABASE_URL is not set: outside MS8_ENV=dev"):
        Settings.from_env({"MS8_ENV": "production"})


@pytest.mark.parametrize("raw", ["٣٠", "３０", "1_000", "+30", "1e3", "inf", "nan", " 3 0"])
def test_numbers_are_read_as_written_in_ascii_digits(raw: str) -> None:
    """int() and float() would read each of these as some number; an operator's setting
    means what it says or is refused."""
    from shared.settings import env_float, env_int

    with pytest.raises(SettingsError, match="MS8_X must be a"):
        env_int({"MS8_X": raw}, "MS8_X", 1)
    with pytest.raises(SettingsError, match="MS8_X must be a"):
        env_float({"MS8_X": raw}, "MS8_X", 1.0)


def test_plain_numbers_and_a_minus_sign_still_read() -> None:
    from shared.settings import env_float, env_int

    assert env_int({"MS8_X": "-5"}, "MS8_X", 1) == -5
    assert env_int({"MS8_X": "030"}, "MS8_X", 1) == 30
    assert env_float({"MS8_X": "0.25"}, "MS8_X", 1.0) == 0.25
    assert env_float({"MS8_X": "-2"}, "MS8_X", 1.0) == -2.0
