"""Source settings: the stub's four by default, overrides per source, errors naming the variable."""

from __future__ import annotations

import pytest

from analytics.settings import DEFAULT_SOURCE_NAMES, AnalyticsSettings
from shared.settings import SettingsError


def test_defaults_are_the_four_sources_of_the_local_stub() -> None:
    s = AnalyticsSettings.from_env({})
    assert s.source_names == DEFAULT_SOURCE_NAMES
    assert [src.base_url for src in s.sources] == [
        f"http://127.0.0.1:8090/{name}" for name in DEFAULT_SOURCE_NAMES]
    assert {(src.timeout, src.concurrency, src.breaker_failures, src.breaker_cooldown)
            for src in s.sources} == {(10.0, 50, 5, 30.0)}
    assert s.sources[0].url(42) == "http://127.0.0.1:8090/skills-engine/user-roles/42"
    assert (s.retry_delay, s.max_bytes, s.fanout_chunk) == (0.2, 256 * 1024, 5000)


def test_sources_and_per_source_overrides() -> None:
    s = AnalyticsSettings.from_env({
        "MS8_SOURCES": " a=http://h:1/a/ , b=https://x.example/b,",
        "MS8_SOURCE_TIMEOUT": "3, b=30",
        "MS8_SOURCE_CONCURRENCY": "a=2",
        "MS8_SOURCE_BREAKER_FAILURES": "b=1,7",  # a bare value later still loses to b=1
        "MS8_SOURCE_BREAKER_COOLDOWN": "0.5",
    })
    a, b = s.sources
    assert (a.name, a.base_url, b.base_url) == ("a", "http://h:1/a", "https://x.example/b")
    assert (a.timeout, b.timeout) == (3.0, 30.0)
    assert (a.concurrency, b.concurrency) == (2, 50)
    assert (a.breaker_failures, b.breaker_failures) == (7, 1)
    assert a.breaker_cooldown == b.breaker_cooldown == 0.5
    assert isinstance(a.concurrency, int) and isinstance(a.timeout, float)


@pytest.mark.parametrize(("env", "message"), [
    ({"MS8_SOURCES": ""}, None),  # empty means the default
    ({"MS8_SOURCES": ","}, "MS8_SOURCES must name at least one source"),
    ({"MS8_SOURCES": "a"}, "MS8_SOURCES: 'a' must be written name=base_url"),
    ({"MS8_SOURCES": "A=http://h"}, "MS8_SOURCES: 'A' is not a source name"),
    ({"MS8_SOURCES": "a=http://h,a=http://i"}, "source 'a' is listed twice"),
    ({"MS8_SOURCES": "a=ftp://h"}, "the base URL of 'a' must be http(s)"),
    ({"MS8_SOURCES": "a=http://h?x=1"}, "without a query"),
    ({"MS8_SOURCE_TIMEOUT": "soon"}, "MS8_SOURCE_TIMEOUT must be a number, got 'soon'"),
    ({"MS8_SOURCE_TIMEOUT": "assessment=0"}, "the value for 'assessment' must be between"),
    ({"MS8_SOURCE_TIMEOUT": "nan"}, "MS8_SOURCE_TIMEOUT must be a number, got 'nan'"),
    # Numbers as written: int() and float() would take each of these.
    ({"MS8_SOURCE_TIMEOUT": "٣"}, "MS8_SOURCE_TIMEOUT must be a number, got '٣'"),
    ({"MS8_SOURCE_TIMEOUT": "1e1"}, "MS8_SOURCE_TIMEOUT must be a number, got '1e1'"),
    ({"MS8_SOURCE_CONCURRENCY": "+2"}, "MS8_SOURCE_CONCURRENCY must be a whole number"),
    ({"MS8_SOURCE_CONCURRENCY": "a=１０"}, "the value for 'a' must be a whole number"),
    ({"MS8_SOURCE_BREAKER_FAILURES": "1_0"}, "must be a whole number, got '1_0'"),
    ({"MS8_SOURCE_TIMEOUT": "asessment=3"}, "'asessment' is not a source of MS8_SOURCES"),
    ({"MS8_SOURCE_CONCURRENCY": "2.5"}, "MS8_SOURCE_CONCURRENCY must be a whole number"),
    ({"MS8_SOURCE_BREAKER_FAILURES": "0"}, "MS8_SOURCE_BREAKER_FAILURES must be between"),
    ({"MS8_SOURCE_MAX_BYTES": "10"}, "MS8_SOURCE_MAX_BYTES must be between"),
    ({"MS8_FANOUT_CHUNK": "0"}, "MS8_FANOUT_CHUNK must be between"),
])
def test_bad_values_name_the_variable(env: dict[str, str], message: str | None) -> None:
    if message is None:
        assert AnalyticsSettings.from_env(env).source_names == DEFAULT_SOURCE_NAMES
        return
    with pytest.raises(SettingsError) as error:
        AnalyticsSettings.from_env(env)
    assert message in str(error.value)
