"""Attacks on ``python -m api`` as shipped, over raw sockets: a huge request head, too many
header fields, and clients that send their head slowly or not at all. Each must cost the
server little and end in a refusal or a closed connection, while others are served."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.api.server import ApiProcess, api_process

SECRET = "hostile-secret-0123456789abcdef0123"
ENV = {"MS8_API_KEYS": f"hostile:{SECRET}:read,write", "MS8_ENV": "production",
       "MS8_API_HEADER_TIMEOUT_SECONDS": "1"}
MIB = 1024 * 1024


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[ApiProcess]:
    with api_process({"DATABASE_URL": db_url, **ENV}, tmp_path / "api.log") as process:
        yield process


def _connect(api: ApiProcess) -> socket.socket:
    url = urlsplit(api.url)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=20)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """What the server says before it closes (empty when it just closes or resets)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return received


def _still_serves(api: ApiProcess) -> None:
    assert httpx.get(f"{api.url}/health/live", timeout=10).status_code == 200


def test_a_100_mib_header_is_refused_early(api: ApiProcess) -> None:
    sock = _connect(api)
    sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
    sent = 0
    chunk = b"a" * MIB
    with sock:
        try:
            while sent < 100 * MIB:
                sock.sendall(chunk)
                sent += len(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass
        answer = _answer(sock)
    # The server stopped reading long before 100 MiB (what it took is socket buffers).
    assert sent < 32 * MIB, f"the server read {sent // MIB} MiB of one header"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:200]
    _still_serves(api)
    assert "request refused before its head was read" in api.log()


def test_too_many_header_fields_are_refused(api: ApiProcess) -> None:
    head = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += b"".join(b"X-F%d: v\r\n" % i for i in range(200)) + b"\r\n"
    with _connect(api) as sock:
        sock.sendall(head)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    _still_serves(api)


def test_a_request_with_ordinary_headers_still_answers(api: ApiProcess) -> None:
    headers = {f"X-Field-{i}": "v" * 100 for i in range(50)}
    response = httpx.get(f"{api.url}/jobs", headers={**headers,
                                                     "Authorization": f"Bearer {SECRET}"})
    assert response.status_code == 200


def test_a_socket_that_never_sends_is_closed(api: ApiProcess) -> None:
    with _connect(api) as sock:
        answer = _answer(sock)  # recv times out after 20 s: the test fails then
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
    _still_serves(api)


def test_a_slow_head_is_closed(api: ApiProcess) -> None:
    """One byte at a time, each well within the keep-alive timeout: the head as a whole
    must still be complete within the head timeout."""
    head = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 1000
    closed = False
    with _connect(api) as sock:
        sock.settimeout(0.25)
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:200]
            closed = True
            break
    assert closed, "a head sent one byte every quarter second was never cut off"
    _still_serves(api)


def test_a_request_with_a_keep_alive_connection_is_answered_twice(api: ApiProcess) -> None:
    """The head timer belongs to one head: a kept-alive connection serves its next
    request, and a pipelined pair is answered in full."""
    request = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with _connect(api) as sock:
        sock.sendall(request + request)
        received = b""
        while received.count(b"HTTP/1.1 200") < 2:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
