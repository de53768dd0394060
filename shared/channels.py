"""NOTIFY channels and their payloads.

Channels are qualified by the schema (``ms8jobs.wakeup``) so that two deployments or two
test schemas on one server never wake each other. Payloads are small JSON objects:

- ``wakeup``:    {"queue": name, "start_after": epoch seconds} — jobs became waiting
- ``events``:    {"state": s, "ids": [...], "batch_ids": [...]} or
                 {"state": "progress", "ids": [id], "progress": p, "message": m}
- ``cancel``:    {"ids": [...]} — active jobs were cancelled
- ``schedules``: {"name": schedule} — a schedule changed
- ``sessions``:  {"id": session id, "expires": epoch seconds} — a dashboard session was
                 logged out (the API processes refuse it from then on)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

CHANNEL_NAMES = ("wakeup", "events", "cancel", "schedules", "sessions")


@dataclass(frozen=True)
class Channels:
    schema: str

    def name(self, channel: str) -> str:
        if channel not in CHANNEL_NAMES:
            raise ValueError(f"unknown channel {channel!r}")
        return f"{self.schema}.{channel}"

    @property
    def wakeup(self) -> str:
        return self.name("wakeup")

    @property
    def events(self) -> str:
        return self.name("events")

    @property
    def cancel(self) -> str:
        return self.name("cancel")

    @property
    def schedules(self) -> str:
        return self.name("schedules")

    def short(self, channel: str) -> str:
        """The unqualified name of a channel of this schema (``ms8jobs.events`` → events)."""
        prefix = f"{self.schema}."
        return channel[len(prefix):] if channel.startswith(prefix) else channel


def decode_payload(payload: str) -> dict[str, Any]:
    """Parse a payload; a malformed one (never sent by us) decodes to {}."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
