"""Attacks on ``python -m api`` as shipped, over raw sockets: a huge request head, too many
header fields, and clients that send their head or their body slowly, or nothing at all.
Each must cost the server little and end in a refusal or a closed connection, while
others are served."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from tests.integration.api.server import ApiProcess, api_process

SECRET = "hostile-secret-0123456789abcdef0123"
ENV = {"MS8_API_KEYS": f"hostile:{SECRET}:read,write", "MS8_ENV": "production",
       "MS8_API_HEADER_TIMEOUT_SECONDS": "1", "MS8_API_BODY_TIMEOUT_SECONDS": "1"}
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


def _dribble(sock: socket.socket, body: bytes) -> tuple[bytes, int]:
    """Send ``body`` a byte every quarter second (each well within any idle timeout),
    reading what comes back; returns (the answer, bytes sent) once the server has
    closed the connection or the whole body went."""
    answer = b""
    sock.settimeout(0.25)
    sent = 0
    for byte in body:
        try:
            sock.sendall(bytes([byte]))
            sent += 1
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return answer, sent
        if not data:
            return answer, sent
        answer += data
    sock.settimeout(20)
    return answer + _answer(sock), sent


def _post_head(path: str, body: bytes, *, key: bool = True) -> bytes:
    auth = b"Authorization: Bearer %s\r\n" % SECRET.encode() if key else b""
    return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (path.encode(), auth, len(body)))


def test_a_body_sent_slowly_is_refused_with_a_json_408(api: ApiProcess) -> None:
    """The head arrives whole; the body a byte at a time, 80 bytes in 20 s: the body as
    a whole must arrive within the body timeout (1 s here)."""
    body = orjson.dumps({"queue": "slow", "data": {"pad": ""}})
    body = body.replace(b'""', b'"' + b"p" * (80 - len(body)) + b'"')
    started = time.monotonic()
    with _connect(api) as sock:
        sock.sendall(_post_head("/jobs", body))
        answer, sent = _dribble(sock, body)
    assert sent < len(body), "the whole body was read, however slowly it came"
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"content-type: application/json" in head.lower()
    assert orjson.loads(rest)["code"] == "request_timeout"
    print(f"\nslow body cut after {time.monotonic() - started:.2f} s, {sent} of "
          f"{len(body)} bytes")
    jobs = httpx.get(f"{api.url}/jobs", headers={"Authorization": f"Bearer {SECRET}"},
                     timeout=10)
    assert jobs.json()["jobs"] == [], "a job was sent from the cut-off body"
    assert "its body did not arrive in time" in api.log()
    assert "unexpected error" not in api.log()  # the handler was told the client left
    _still_serves(api)


def test_a_body_dribbled_after_the_answer_does_not_hold_the_connection(
        api: ApiProcess) -> None:
    """Without a key the request is answered 401 before its body is read; the client
    keeps sending the body, a byte at a time: the connection is still closed once the
    body timeout is over (each byte would re-arm a keep-alive timer)."""
    body = b"{" + b" " * 78 + b"}"
    with _connect(api) as sock:
        sock.sendall(_post_head("/jobs", body, key=False))
        answer, sent = _dribble(sock, body)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:300]
    assert b"HTTP/1.1 408" not in answer  # one answer per request
    assert sent < len(body), "the connection stayed open for the whole dribbled body"
    _still_serves(api)
