"""--help text of environment settings, generated from the settings themselves.

Each process lists its variables once, with what they do and the field of its settings
object that holds the value; the default shown is the one ``from_env({})`` computes, so
a default changed in the code changes the help, and a test can check that no variable
the settings read is missing.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Documented:
    """One variable: the settings field it fills, what it does, and, for a default that
    follows from another setting, how (shown instead of the value)."""

    variable: str
    field: str
    what: str
    derived: str | None = None
    scale: float = 1.0  # the variable's unit per the field's (1000 for _MS into seconds)


def describe(title: str, defaults: object, rows: Sequence[Documented]) -> list[str]:
    """``title``, then each variable with its default and, indented, what it does."""
    lines = [title]
    for row in rows:
        value = getattr(defaults, row.field)
        if isinstance(value, float):
            scaled = value * row.scale
            shown = str(int(scaled)) if scaled.is_integer() else f"{scaled:g}"
        else:
            shown = str(value)
        lines.append(f"  {row.variable} ({row.derived or shown})")
        lines += textwrap.wrap(row.what, 84, initial_indent="      ",
                               subsequent_indent="      ")
    return lines


def shared_settings(names: Sequence[str]) -> list[str]:
    """The line naming the shared settings (``shared.settings``) a process reads too."""
    return textwrap.wrap(f"Database and logging: {', '.join(names)} (see shared/settings.py).",
                         88)
