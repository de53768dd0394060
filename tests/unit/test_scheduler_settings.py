"""Scheduler settings: defaults, and errors that name the variable."""

from __future__ import annotations

import pytest

from scheduler.settings import SchedulerSettings
from shared.settings import SettingsError


def test_defaults() -> None:
    settings = SchedulerSettings.from_env({})
    assert settings.grace_seconds == 3600
    assert settings.firing_retention_seconds == 30 * 86400
    assert settings.resync_seconds == 300


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"MS8_SCHEDULER_GRACE_SECONDS": "soon"}, "MS8_SCHEDULER_GRACE_SECONDS must be a number"),
        ({"MS8_SCHEDULER_GRACE_SECONDS": "0"}, "MS8_SCHEDULER_GRACE_SECONDS must be between"),
        ({"MS8_SCHEDULER_RESYNC_SECONDS": "0"}, "MS8_SCHEDULER_RESYNC_SECONDS"),
        ({"MS8_SCHEDULER_GRACE_SECONDS": "7200",
          "MS8_SCHEDULER_FIRING_RETENTION_SECONDS": "3600"},
         "MS8_SCHEDULER_FIRING_RETENTION_SECONDS (3600) must be longer than"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError) as error:
        SchedulerSettings.from_env(env)
    assert words in str(error.value)
