"""uvicorn's httptools protocol with bounds on the request: its head's size, its number
of header fields, and the time a client may take to send the head, then the body.

httptools (llhttp) puts no limit on the head: a 100 MiB header field is buffered and
parsed whole, costing seconds of CPU on the one event loop, and a client that sends a
byte now and then, or nothing at all, holds its connection forever. The application
only sees a request once its head is complete, so the bounds must live here, where the
bytes arrive:

- bytes received while a head is incomplete, past ``max_head_bytes``: 431, closed;
- header fields past ``MAX_HEADER_FIELDS``: 431, closed;
- a head not complete ``head_timeout`` seconds after the connection opened or its first
  byte arrived: 408, closed. Between requests uvicorn's keep-alive timeout applies.
- a body not complete ``body_timeout`` seconds after its head: 408 with the API's JSON
  error (``request_timeout``), closed. A body dribbled a byte at a time would otherwise
  hold its connection, and the handler waiting for it, for as long as the client likes:
  every byte re-arms uvicorn's keep-alive timer, even after the application has answered
  without reading the body. The handler waiting for the body is told the client left.

The parser then never holds more than one read's worth past the limit. The body timer is
armed only when a read ends with a body still incomplete, so a request whose body comes
with its head (nearly all of them) costs no timer.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.errors import ApiError
from shared.logging import get_logger

log = get_logger(__name__)
MAX_HEADER_FIELDS = 100
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class _HeadTooLarge(Exception):
    pass


class BoundedHttpProtocol(HttpToolsProtocol):
    """One connection; see the module docstring for the bounds."""

    def __init__(self, config: Config, server_state: ServerState,
                 app_state: dict[str, Any], _loop: asyncio.AbstractEventLoop | None = None,
                 *, max_head_bytes: int, head_timeout: float,
                 body_timeout: float | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._max_head_bytes = max_head_bytes
        self._head_timeout = head_timeout
        self._body_timeout = body_timeout
        self._reading_head = True
        self._reading_body = False
        self._body_timer: asyncio.TimerHandle | None = None
        self._heads_done = 0
        self._head_bytes = 0
        self._fields = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        self._disarm_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        heads_before = self._heads_done
        super().data_received(data)
        if self.parser is None or self.transport.is_closing():
            return
        if self._heads_done != heads_before:
            self._head_bytes = 0  # this read finished a head: the rest was body or next
        elif self._reading_head:
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head_bytes:
                self._refuse(431)
                return
        if self._reading_body and self._body_timer is None and self._body_timeout:
            self._body_timer = self.loop.call_later(self._body_timeout, self._body_timed_out)

    def send_400_response(self, msg: str) -> None:
        # A callback's error reaches uvicorn as a parser error; say what it was instead.
        if self._fields > MAX_HEADER_FIELDS:
            self._refuse(431)
        else:
            super().send_400_response(msg)

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._fields = 0
        self._arm_head_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self._fields > MAX_HEADER_FIELDS:
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._reading_body = True
        self._heads_done += 1
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_body = False
        self._disarm_body_timer()
        self._reading_head = True  # the next bytes are the next request's head

    # Bounds
    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._reading_head and not self.transport.is_closing():
            self._refuse(408)

    def _disarm_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if not self._reading_body or self.transport.is_closing():
            return
        log.warning("request refused: its body did not arrive in time",
                    seconds=self._body_timeout, client=self.client[0] if self.client else None)
        cycle = self.cycle
        # Pipelined behind a request still being answered: no answer may overtake that one.
        if cycle is not None and not cycle.response_started and not self.pipeline:
            body = orjson.dumps(ApiError(
                "request_timeout", f"the request body did not arrive within "
                f"{self._body_timeout:g} s of its head").body())
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        if cycle is not None and not cycle.response_complete:
            # What uvicorn does when the client goes: the handler's next receive() says
            # so, and whatever it sends is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()
        self.parser = None  # type: ignore[assignment]  # feed nothing more

    def _refuse(self, status: int) -> None:
        log.warning("request refused before its head was read", status=status,
                    client=self.client[0] if self.client else None)
        self._disarm_head_timer()
        reason = _REASONS[status]
        body = reason + b"\n"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, reason, len(body), body))
        self.transport.close()
        self.parser = None  # type: ignore[assignment]  # feed nothing more


def bounded_protocol(max_head_bytes: int, head_timeout: float,
                     body_timeout: float | None = None) -> Any:
    """The protocol class to give ``uvicorn.Config(http=...)``."""
    return partial(BoundedHttpProtocol, max_head_bytes=max_head_bytes,
                   head_timeout=head_timeout, body_timeout=body_timeout)
