"""Run the whole stack locally: database, migrations, api, worker(s), scheduler and the
stub of the microservices.

With no ``DATABASE_URL``, the embedded PostgreSQL under ``.data/`` is started (or
adopted) first. Each service runs as its own process, exactly as deployed, and its
output is prefixed with its name. Ctrl-C (or SIGTERM) stops them all gracefully; if one
dies, the others are stopped and the exit status says so.

    python -m devstack [--workers N] [--no-scheduler] [--port 8000] [--stub-port 8090]
                       [--seed-user-roles 300]

The workers collect from the stub (``MS8_SOURCES`` on its port) unless ``MS8_SOURCES``
is set already. After migrating, user-roles 1..300 are seeded (idempotent: a database
that has them is left alone), so "Run now" on the daily-batch schedule runs a real
nightly batch against the stub.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from analytics.settings import DEFAULT_SOURCE_NAMES
from shared.logging import mask_secrets
from shared.settings import Settings, SettingsError, env_int

ROOT = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Run in each child before exec: if devstack is killed, its services get SIGTERM
    (Linux) instead of running on unowned."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass
class Service:
    name: str
    module: str
    args: list[str]


def services(args: argparse.Namespace) -> list[Service]:
    found = []
    if (ROOT / "api" / "__main__.py").exists():
        found.append(Service("api", "api", []))
    if (ROOT / "worker" / "__main__.py").exists():
        found += [Service(f"worker.{i + 1}", "worker", []) for i in range(args.workers)]
    if (ROOT / "scheduler" / "__main__.py").exists() and not args.no_scheduler:
        found.append(Service("scheduler", "scheduler", []))
    stub = ROOT / "stub" / "__main__.py"
    if stub.exists():
        found.append(Service("stub", "stub", []))
    return found


async def pump(name: str, stream: asyncio.StreamReader, width: int) -> None:
    prefix = f"{name:<{width}} | ".encode()
    while line := await stream.readline():
        sys.stdout.buffer.write(prefix + line)
        sys.stdout.flush()


async def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    env = dict(os.environ)
    if settings.database_url is None:
        from devstack.embedded import ensure_embedded

        url = ensure_embedded(Path(settings.data_dir) / "pg")
        env["DATABASE_URL"] = url
        print(f"devstack | embedded PostgreSQL at {mask_secrets(url)}", flush=True)
    env.setdefault("PORT", str(args.port))
    env.setdefault("MS8_API_HOST", "127.0.0.1")  # keyless in dev: this machine only
    env["MS8_STUB_PORT"] = str(args.stub_port)
    env.setdefault("MS8_SOURCES", ",".join(
        f"{name}=http://127.0.0.1:{args.stub_port}/{name}" for name in DEFAULT_SOURCE_NAMES))
    env.setdefault("MS8_ENV", "dev")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The services write to a pipe here, which would make them choose JSON: follow the
    # terminal devstack itself runs in instead.
    env.setdefault("MS8_LOG_FORMAT", "console" if sys.stdout.isatty() else "json")

    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.migrate", env=env, cwd=ROOT)
    if await migrate.wait() != 0:
        print("devstack | migrations failed; not starting the services", flush=True)
        return 1
    if args.seed_user_roles:
        seed = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shared.cli", "seed", "--user-roles",
            str(args.seed_user_roles), env=env, cwd=ROOT)
        if await seed.wait() != 0:
            print("devstack | seeding the user-roles failed; not starting the services",
                  flush=True)
            return 1

    todo = services(args)
    if not todo:
        print("devstack | no service to run", flush=True)
        return 1
    width = max(len(s.name) for s in todo)
    procs: dict[str, asyncio.subprocess.Process] = {}
    pumps = []
    for service in todo:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", service.module, *service.args, env=env, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        procs[service.name] = proc
        assert proc.stdout is not None
        pumps.append(asyncio.create_task(pump(service.name, proc.stdout, width)))
    if "api" in procs:
        print(f"devstack | dashboard: http://127.0.0.1:{env['PORT']}/", flush=True)
    if "stub" in procs:
        print(f"devstack | microservices stub: http://127.0.0.1:{args.stub_port}/"
              "_admin/sources", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waits = {asyncio.create_task(p.wait()): name for name, p in procs.items()}
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({*waits, stopper}, return_when=asyncio.FIRST_COMPLETED)
    status = 0
    for task in done:
        if task in waits:
            print(f"devstack | {waits[task]} exited with {task.result()}; stopping the rest",
                  flush=True)
            status = 1
    for proc in procs.values():
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs.values())), 30)
    except TimeoutError:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
    await asyncio.gather(*pumps, return_exceptions=True)
    stopper.cancel()
    return status


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--no-scheduler", action="store_true", help="do not run the scheduler")
    parser.add_argument("--port", type=int, default=8000, help="api port (default 8000)")
    try:
        stub_port = env_int(os.environ, "MS8_STUB_PORT", 8090, low=1, high=65535)
    except SettingsError as error:
        sys.exit(f"devstack: {error}")
    parser.add_argument("--stub-port", type=int, default=stub_port,
                        help="port of the microservices stub (MS8_STUB_PORT, else 8090)")
    parser.add_argument("--seed-user-roles", type=int, default=300, metavar="N",
                        help="make sure user-roles 1..N exist (default 300; 0: do not seed)")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
