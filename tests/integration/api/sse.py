"""Reading Server-Sent Events from a live server in tests: the client's reader, with each
event's data parsed as JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from ms8_client import sse


@dataclass
class Event:
    name: str
    data: Any
    id: str | None


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    """The events of a text/event-stream response, comments skipped."""
    async for event in sse.events(response):
        yield Event(event.name, orjson.loads(event.data), event.id)
