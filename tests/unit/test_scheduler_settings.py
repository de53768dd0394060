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


def test_help_names_every_setting_with_the_default_the_code_computes() -> None:
    """The scheduler's --help is generated from its settings, like the worker's."""
    import re
    from pathlib import Path

    import scheduler.settings
    from scheduler.cli import build_parser

    text = build_parser().format_help()
    read = set(re.findall(r'"(MS8_[A-Z_]+)"', Path(scheduler.settings.__file__).read_text()))
    assert read and not {name for name in read if name not in text}
    assert "MS8_SCHEDULER_FIRING_RETENTION_SECONDS (2592000)" in text
