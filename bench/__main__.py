"""``python -m bench``: every scenario, on ms8-jobs and its peers, in one run, one table.

    python -m bench                  the full run (the issue's sizes, every scenario but soak)
    python -m bench --quick          small sizes, about a minute
    python -m bench --only drain     one scenario (repeatable: --only enqueue --only idle)
    python -m bench --only fanout    the nightly fan-out of 30,000 user-roles end to end
    python -m bench --only load      the API under load for a minute, workers draining
                                     (--load-seconds 300: five minutes)
    python -m bench --only scale     drain with 1, 2, 4 workers; sends to 1, 2 APIs
    python -m bench --only soak      1,000,000 jobs at 2,500/s, retention pruning on: do
                                     tables, indexes and fetch stay flat? (--soak-jobs N,
                                     --soak-rate PER_SECOND)
    python -m bench --json out.json  also write every sample, note and the machine
    python -m bench --explain        also print EXPLAIN (ANALYZE, BUFFERS) of fetch and complete
    python -m bench --profile        also profile the worker draining (py-spy)

Progress goes to stderr, the table to stdout. A scenario that fails is reported and the
run goes on; the exit status is then 1. Peers are measured when installed, and skipped
with a note saying why otherwise: PGQueuer and Procrastinate from the ``bench`` extra
(``pip install -e '.[bench]'``); pg-boss and BullMQ from ``bench/node`` (``scripts/setup``
runs ``npm ci`` there where Node.js and npm exist), BullMQ also needing Debian's
``redis-server`` (``scripts/setup --with-system-tools``) for a Redis of the run's own.
The soak takes minutes of its own, so a run without ``--only`` leaves it out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import os
import platform
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import api_load, api_soak, fanout, history, node, redis_server, scale, scenarios, soak
from bench.context import Context
from bench.cpu import ServerCpu, server_cpu_scope
from bench.ms8 import Ms8System, worker_available
from bench.results import PEERS, Report
from bench.server import ROOT, Server
from bench.sizes import FULL, QUICK, TINY
from bench.systems import System
from shared.logging import configure_logging

SCENARIOS = ("enqueue", "drain", "latency", "idle", "api", "history", "fanout", "load", "scale",
             "soak")
#: What a run without --only measures: every scenario but the long soak.
DEFAULT = tuple(s for s in SCENARIOS if s != "soak")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    size.add_argument("--tiny", action="store_true",
                      help="smallest sizes: proves the code paths work (smoke test)")
    parser.add_argument("--only", action="append", choices=SCENARIOS, metavar="SCENARIO",
                        help=f"run only this scenario ({', '.join(SCENARIOS)}); repeatable; "
                             "without it every one but soak")
    parser.add_argument("--load-seconds", type=float, metavar="SECONDS",
                        help="how long the API is kept under load (60 s in the full run)")
    parser.add_argument("--soak-jobs", type=int, metavar="N",
                        help="jobs sent through the soak (1,000,000 in the full run)")
    parser.add_argument("--soak-rate", type=float, metavar="PER_SECOND",
                        help="jobs sent per second in the soak (2,500 in the full run)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument("--no-peers", action="store_true", help="measure ms8-jobs only")
    parser.add_argument("--peer", action="append", choices=PEERS, metavar="PEER",
                        help=f"measure only this peer beside ms8-jobs ({', '.join(PEERS)}); "
                             "repeatable")
    parser.add_argument("--explain", action="store_true",
                        help="print EXPLAIN (ANALYZE, BUFFERS) of fetch and complete")
    parser.add_argument("--profile", action="store_true",
                        help="profile the ms8-jobs worker during the first 1-worker drain (py-spy)")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="where process logs go (default: bench/results/<time>)")
    return parser.parse_args(argv)


def peers(enabled: bool, only: list[str] | None = None) -> tuple[list[System], list[str]]:
    """The peers to measure (all, or those in ``only``), and notes on those that cannot be."""
    if not enabled:
        return [], ["peers not measured (--no-peers)"]
    found, notes = _installed_peers()
    if only:
        found = [s for s in found if s.name in only]
        notes = [n for n in notes if any(n.startswith(name + " ") for name in only)]
        notes.append(f"peers measured: {', '.join(only)} (--peer)")
    return found, notes


def _installed_peers() -> tuple[list[System], list[str]]:
    found: list[System] = []
    notes = []
    if importlib.util.find_spec("pgqueuer"):
        from bench.pgqueuer_peer import PgQueuerSystem

        found.append(PgQueuerSystem())
    else:
        notes.append("PGQueuer not installed: pip install -e '.[bench]'")
    if importlib.util.find_spec("procrastinate"):
        from bench.procrastinate_peer import ProcrastinateSystem

        found.append(ProcrastinateSystem())
    else:
        notes.append("Procrastinate not installed: pip install -e '.[bench]'")
    if (why := node.missing("pg-boss")) is None:
        from bench.pgboss_peer import PgBossSystem

        found.append(PgBossSystem())
    else:
        notes.append(f"pg-boss not measured: {why}")
    why = node.missing("bullmq")
    if why is None and redis_server.redis_server() is None:
        why = ("redis-server not found (scripts/setup --with-system-tools installs "
               "Debian's redis-server)")
    if why is None and not importlib.util.find_spec("redis"):
        why = "the redis client for Python not installed: pip install -e '.[bench]'"
    if why is None:
        from bench.bullmq_peer import BullMqSystem

        found.append(BullMqSystem())
    else:
        notes.append(f"BullMQ not measured: {why}")
    return found, notes


async def _open_lifetimes(stack: contextlib.AsyncExitStack, systems: list[System],
                          log_dir: Path, notes: list[str]) -> list[System]:
    """Start the servers systems bring with them (BullMQ's Redis); a system whose server
    does not start is left out of the run, with a note."""
    kept: list[System] = []
    for system in systems:
        lifetime = getattr(system, "lifetime", None)
        if lifetime is not None:
            try:
                await stack.enter_async_context(lifetime(log_dir))
            except Exception as error:  # the run goes on without this peer
                notes.append(f"{system.name} not measured: its server did not start: {error!r}")
                continue
        kept.append(system)
    return kept


def machine(server: Server) -> dict[str, str]:
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)

    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load average at start": _load_average(),
        "cpus": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "cpu model": _cpu_model(),
        "postgresql": server.version,
        "postgresql server": server.where,
        "postgresql cpu counted": server_cpu_scope(server.owned),
        "python": platform.python_version(),
        "asyncpg": version("asyncpg"),
        "pgqueuer": version("pgqueuer"),
        "procrastinate": version("procrastinate"),
        "node": node.node_version(),
        "pg-boss": node.version("pg-boss"),
        "bullmq": node.version("bullmq"),
        "redis-server": redis_server.version(),
    }


def _load_average() -> str:
    """Other work on the machine skews every number: the run records how busy it was."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


async def run(args: argparse.Namespace) -> int:
    async with contextlib.AsyncExitStack() as servers:  # the peers' own, stopped at the end
        return await _run(args, servers)


async def _run(args: argparse.Namespace, servers: contextlib.AsyncExitStack) -> int:
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    if args.load_seconds is not None:
        sizes = dataclasses.replace(sizes, load_seconds=args.load_seconds)
    if args.soak_jobs is not None:
        if args.soak_jobs < 1:
            raise SystemExit("--soak-jobs must be at least 1")
        sizes = dataclasses.replace(sizes, soak_jobs=args.soak_jobs)
    if args.soak_rate is not None:
        if args.soak_rate <= 0:
            raise SystemExit("--soak-rate must be above 0")
        sizes = dataclasses.replace(sizes, soak_rate=args.soak_rate)
    configure_logging("bench", "warning", "console")
    wanted = set(args.only or DEFAULT)
    log_dir = args.log_dir or ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S")
    report = Report()
    server = await Server.start()
    servers.push_async_callback(server.close)  # what a failure left of its databases
    ctx = Context(server=server, sizes=sizes, report=report, log_dir=log_dir,
                  profile=args.profile, explain=args.explain)
    ms8 = Ms8System()
    peer_systems, peer_notes = peers(not args.no_peers, args.peer)
    peer_systems = await _open_lifetimes(servers, peer_systems, log_dir, peer_notes)
    systems: list[System] = [ms8, *peer_systems]
    report.context = {
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "sizes": sizes.name,
        "machine": machine(server),
        "settings": {s.name: s.settings_text for s in systems},
        "notes": list(peer_notes),
    }
    with_worker = systems if worker_available() else peer_systems
    if not worker_available():
        report.context["notes"].append(
            "ms8-jobs worker not available: its drain, latency and idle are not measured")
    failures = 0

    async def attempt(what: str, step: Callable[[], Awaitable[None]]) -> None:
        nonlocal failures
        ctx.say(f"-- {what}")
        try:
            await step()
        except Exception as error:  # one failed scenario must not lose the others
            failures += 1
            report.context["notes"].append(f"{what} failed: {error!r}")
            ctx.say(f"!! {what} failed: {error!r}\n{traceback.format_exc()}")

    if "enqueue" in wanted:
        for system in systems:
            await attempt(f"enqueue on {system.name}",
                          lambda s=system: scenarios.enqueue(ctx, s))
    if "drain" in wanted:
        for workers in (1, 2):
            for system in with_worker:
                await attempt(f"drain with {workers} on {system.name}",
                              lambda s=system, w=workers: scenarios.drain(ctx, s, w))
    if "latency" in wanted:
        for system in with_worker:
            await attempt(f"latency on {system.name}",
                          lambda s=system: scenarios.latency(ctx, s))
    if "idle" in wanted and with_worker:
        await attempt("idle cost", lambda: scenarios.idle(ctx, with_worker))
    if "api" in wanted:
        await attempt("API sends", lambda: api_load.run(ctx))
    if "history" in wanted or args.explain:
        await attempt("fetch with history", lambda: history.run(ctx, measure="history" in wanted))
    if "fanout" in wanted and worker_available():
        await attempt("nightly fan-out", lambda: fanout.run(ctx))
    if "load" in wanted and worker_available():
        await attempt("API under load", lambda: api_soak.run(ctx))
    if "scale" in wanted:
        await attempt("scale-out", lambda: scale.run(ctx))
    if "soak" in wanted and worker_available():
        await attempt("soak", lambda: soak.run(ctx))
    if ServerCpu.unavailable is not None:
        report.context["notes"].append(
            f"PostgreSQL's CPU not measured: {ServerCpu.unavailable}")

    report.context["machine"]["load average at end"] = _load_average()
    print(f"\nms8-jobs benchmark ({sizes.name}), {report.context['machine']['date']}\n")
    print(", ".join(f"{k}: {v}" for k, v in report.context["machine"].items()) + "\n")
    print(report.table())
    notes = report.notes()
    if notes or report.context["notes"]:
        print("\nNotes:")
        for note in report.context["notes"]:
            print(f"- {note}")
        if notes:
            print(notes)
    print("\nSettings:")
    for name, text in report.context["settings"].items():
        print(f"- {name}: {text}")
    for title, text in report.sections.items():
        print(f"\n== {title} ==\n{text}")
    if args.json:
        report.write_json(args.json)
        ctx.say(f"results written to {args.json}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
