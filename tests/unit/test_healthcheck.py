"""The image's health check asks the process the container runs, on its own port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from shared.healthcheck import probe, url_for


@pytest.mark.parametrize(
    ("command", "env", "url"),
    [
        (["python", "-m", "api"], {}, "http://127.0.0.1:8000/health/live"),
        (["python", "-m", "api"], {"PORT": "8080"}, "http://127.0.0.1:8080/health/live"),
        (["/opt/ms8/bin/python", "-m", "worker", "--metrics-port", "9101"], {},
         "http://127.0.0.1:9101/metrics"),
        (["python", "-m", "worker", "--metrics-port=7000"], {}, "http://127.0.0.1:7000/metrics"),
        (["python", "-m", "worker"], {"MS8_WORKER_METRICS_PORT": "9101"},
         "http://127.0.0.1:9101/metrics"),
        (["python", "-m", "worker"], {}, None),
        (["python", "-m", "scheduler"], {"PORT": "8000"}, None),
        (["python", "-m", "shared.migrate"], {}, None),
        ([], {}, None),
    ],
)
def test_it_asks_what_the_process_serves(
    command: list[str], env: dict[str, str], url: str | None,
) -> None:
    assert url_for(command, env) == url


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, int]]]:
    answer = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(answer["status"])
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/health/live", answer
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_healthy_only_on_200(server: tuple[str, dict[str, int]]) -> None:
    url, answer = server
    assert probe(url) == 0
    answer["status"] = 503
    assert probe(url) == 1


def test_unhealthy_when_nothing_listens() -> None:
    with HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_port
    assert probe(f"http://127.0.0.1:{port}/health/live") == 1
