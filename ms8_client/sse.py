"""Reading a ``text/event-stream`` response: events as (name, data) pairs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: str


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """The events of the stream in order; comments (pings) and ``retry:`` lines skipped."""
    name, data = "message", []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Event(name, "\n".join(data))
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
