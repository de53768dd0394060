"""A Redis server of the benchmark's own, for BullMQ: started on a free port in a
temporary directory, stopped and removed when the run ends.

Never the machine's Redis (whatever else uses it would be measured too, and its
persistence is whatever it was set up with). Settings, from BullMQ's production guide:
append-only file with an fsync every second (``appendfsync everysec``, what it
recommends; a PostgreSQL commit waits for its fsync, so this is the weaker durability:
an acknowledged job can be lost in the last second before a crash of the machine),
no RDB snapshots, ``maxmemory-policy noeviction``. Debian's ``redis-server`` binary
(``scripts/setup --with-system-tools`` installs it).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import processes
from bench.cpu import own_seconds

SETTINGS = ("--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--maxmemory-policy", "noeviction")


def redis_server() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)


def version() -> str:
    found = redis_server()
    if found is None:
        return "not installed"
    out = subprocess.run([found, "--version"], capture_output=True, text=True,
                         check=False).stdout
    words = [w for w in out.split() if w.startswith("v=")]
    return words[0][2:] if words else out.strip()


@dataclass
class RedisServer:
    process: processes.Process
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, log_dir: Path, timeout: float = 20.0) -> RedisServer:
        binary = redis_server()
        if binary is None:
            raise RuntimeError("redis-server not found")
        directory = Path(tempfile.mkdtemp(prefix="bench-redis-"))
        port = processes.free_port()
        argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory),
                "--daemonize", "no", "--logfile", "", *SETTINGS]
        proc = processes.start("redis-server", argv, {}, log_dir)
        server = cls(proc, directory, port)
        deadline = time.monotonic() + timeout
        while True:
            proc.check_alive()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if time.monotonic() > deadline:
                    server.stop()
                    raise RuntimeError(f"redis-server did not listen on {port} "
                                       f"in {timeout:.0f} s") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return server

    def cpu_seconds(self) -> float:
        """User + system CPU of the server so far (the store's side of a drain)."""
        return own_seconds(self.process.pid, reaped=True)  # AOF rewrites run in a child

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
