"""Reading a ``text/event-stream`` response: its events in order, comments skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: str
    id: str | None = None


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """The events of the stream; comments (pings) and ``retry:`` lines are skipped."""
    name, event_id = "message", None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Event(name, "\n".join(data), event_id)
            name, data, event_id = "message", [], None
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                event_id = value
