"""The worker's metrics endpoint answers on IPv4 and IPv6 alike by default."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from worker.metrics import WorkerMetrics


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_by_default_a_scraper_reaches_it_over_either_family() -> None:
    metrics = WorkerMetrics()
    port = metrics.serve(0)
    try:
        for host in ("127.0.0.1", "[::1]"):
            with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as reply:
                assert reply.status == 200
                assert b"ms8_build_info" in reply.read()
    finally:
        metrics.close()


def test_an_address_given_is_the_only_one_served() -> None:
    metrics = WorkerMetrics()
    port = metrics.serve(0, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            assert reply.status == 200
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://[::1]:{port}/metrics", timeout=5)
    finally:
        metrics.close()
