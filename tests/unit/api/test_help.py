"""``python -m api --help`` is generated from the API's settings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import api.config
from api.cli import build_parser


def test_help_names_every_setting_with_the_default_the_code_computes() -> None:
    text = build_parser().format_help()
    read = set(re.findall(r'"(MS8_API_[A-Z_]+|MS8_[A-Z_]+|PORT)"',
                          Path(api.config.__file__).read_text()))
    assert read - {"MS8_ENV"} and not {name for name in read if name not in text}
    assert "MS8_API_BODY_TIMEOUT_SECONDS (60)" in text
    assert "MS8_API_MAX_JOBS_PER_REQUEST (1000)" in text
    assert "PORT (8000)" in text


def test_an_unknown_argument_is_refused_not_ignored() -> None:
    done = subprocess.run([sys.executable, "-m", "api", "--port", "9"], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "unrecognized arguments: --port 9" in done.stderr
    shown = subprocess.run([sys.executable, "-m", "api", "--help"], capture_output=True,
                           text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert shown.returncode == 0 and "MS8_API_KEYS" in shown.stdout
