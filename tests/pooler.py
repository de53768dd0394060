"""A real PgBouncer for the tests, in transaction mode in front of a test PostgreSQL.

Debian's ``pgbouncer`` (``scripts/setup --with-system-tools`` installs it). Each
``PgBouncer`` runs its own process on a free port with a throw-away configuration; as
root it drops to ``nobody`` (PgBouncer refuses to run as root). Without the binary the
tests skip saying so, except in the full (CI) run (``MS8_REQUIRE_BROWSER=1``), where a
missing tool is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import pytest

from tests.support import free_port

CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer")


def pgbouncer_binary() -> str:
    """The binary, or skip (fail in the full run) saying how to get it."""
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    reason = "pgbouncer is not installed (scripts/setup --with-system-tools installs it)"
    if os.environ.get("MS8_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    print(f"SKIP: {reason}")
    pytest.skip(reason)


class PgBouncer:
    """``pgbouncer`` in front of ``server_url``'s server; ``url(database)`` reaches it."""

    def __init__(self, server_url: str, *, pool_mode: str = "transaction",
                 tls: tuple[Path, Path] | None = None) -> None:
        self.binary = pgbouncer_binary()
        parts = urlsplit(server_url)
        self.user = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        self.server = parts
        self.port = free_port()
        self.pool_mode = pool_mode
        self.tls = tls
        self.directory = Path(tempfile.mkdtemp(prefix="ms8-pgbouncer-"))
        self._process: subprocess.Popen[str] | None = None

    def url(self, database: str) -> str:
        netloc = f"{self.server.username}:{self.server.password}@127.0.0.1:{self.port}"
        return urlunsplit(self.server._replace(netloc=netloc, path=f"/{database}"))

    def _config(self) -> Path:
        self.directory.chmod(0o755)  # readable by the user it drops to
        users = self.directory / "userlist.txt"
        users.write_text(f'"{self.user}" "{self.password}"\n')
        lines = [
            "[databases]",
            f"* = host={self.server.hostname} port={self.server.port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = scram-sha-256",
            f"auth_file = {users}",
            f"pool_mode = {self.pool_mode}",
            "max_client_conn = 500",
            "default_pool_size = 40",
            "server_reset_query = DISCARD ALL",
            "ignore_startup_parameters = extra_float_digits",
        ]
        if self.tls is not None:
            cert, key = self.tls
            lines += ["client_tls_sslmode = allow", f"client_tls_cert_file = {cert}",
                      f"client_tls_key_file = {key}"]
        config = self.directory / "pgbouncer.ini"
        config.write_text("\n".join(lines) + "\n")
        for path in self.directory.iterdir():
            path.chmod(0o644)
        return config

    def start(self) -> PgBouncer:
        command = [self.binary, str(self._config())]
        if os.geteuid() == 0:
            command[1:1] = ["-u", "nobody"]
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        deadline = time.monotonic() + 15
        while True:
            if self._process.poll() is not None:
                output = self._process.stdout.read() if self._process.stdout else ""
                raise RuntimeError(f"pgbouncer exited ({self._process.returncode}):\n{output}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("pgbouncer did not listen within 15 s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
