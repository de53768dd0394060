"""``python -m worker``: parse flags over the environment, migrate, run until a signal.

Flags override the environment variables of the same settings (see ``--help``); every
value is validated before anything starts, and a bad one exits with status 2 and a
message naming the flag and variable (``shared.startup``). Exit status: 0 after a clean
stop (every job reported or handed back), 1 when the database could not be reached to
hand jobs back (maintenance reclaims them), 2 on bad settings or an incompatible schema.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from shared import startup
from shared.logging import configure_logging, get_logger
from shared.settings import Settings, SettingsError
from shared.settings_help import Documented, describe, shared_settings
from shared.startup import Refusal, open_checked
from worker.handlers import Handler, HandlerError, collectors, load
from worker.metrics import WorkerMetrics
from worker.runner import Runner
from worker.settings import WorkerSettings

log = get_logger("worker")

# flag → the environment variable it overrides.
FLAG_ENV = {
    "queues": ("--queues", "MS8_WORKER_QUEUES"),
    "concurrency": ("--concurrency", "MS8_WORKER_CONCURRENCY"),
    "worker_id": ("--id", "MS8_WORKER_ID"),
    "handlers": ("--handlers", "MS8_WORKER_HANDLER_MODULES"),
    "poll_only": ("--poll-only", "MS8_POLL_ONLY"),
    "poll": ("--poll", "MS8_POLL_SECONDS"),
    "heartbeat": ("--heartbeat", "MS8_HEARTBEAT_SECONDS"),
    "stall": ("--stall", "MS8_STALL_SECONDS"),
    "grace": ("--grace", "MS8_WORKER_GRACE_SECONDS"),
    "metrics_port": ("--metrics-port", "MS8_WORKER_METRICS_PORT"),
    "no_maintenance": ("--no-maintenance", "MS8_MAINTENANCE"),
}

DESCRIPTION = """\
Run jobs of the ms8-jobs queues: woken by NOTIFY, batched, crash-proof, graceful.

Examples:
  python -m worker                                   every queue with a handler
  python -m worker --queues collect-analytics=20,fresh-data=5
  python -m worker --queues noop=50 --metrics-port 9101   (benchmarks)
"""

# The settings only the environment sets; --help states each default as the code
# computes it (``shared.settings_help``).
ENVIRONMENT_ONLY = (
    Documented("MS8_LISTEN_CHECK_SECONDS", "listen_check_seconds",
               "health check of the LISTEN connection"),
    Documented("MS8_WORKER_DB_TIMEOUT_SECONDS", "db_timeout_seconds",
               "bound on each statement the worker sends"),
    Documented("MS8_CLAIM_COMMIT", "claim_commit",
               "durable: a fetch's claim commits after its WAL flush, like every write; "
               "async: without waiting for it, so a job starts sooner (the flush's time, "
               "0.3 ms on a quiet disk, milliseconds on a busy one), but after a PostgreSQL "
               "crash (not a worker's) a claim already acknowledged can be lost and its job "
               "run a second time, possibly while the first run goes on"),
    Documented("MS8_COMPLETE_WINDOW_MS", "complete_window_seconds",
               "how long results gather before a flush", scale=1000),
    Documented("MS8_COMPLETE_BATCH", "complete_batch", "results per flush at most"),
    Documented("MS8_WORKER_REGISTRY_SECONDS", "registry_seconds",
               'registry "last seen" refresh'),
    Documented("MS8_WORKER_FORGET_SECONDS", "forget_worker_seconds",
               "maintenance forgets workers unseen this long (checked every half of it)",
               "5 x the registry refresh, at least 300"),
    Documented("MS8_LEADER_WAIT_SECONDS", "leader_wait_seconds",
               "bound on each wait for the maintenance lock"),
    Documented("MS8_LIVENESS_SECONDS", "liveness_seconds",
               "how often dead workers' jobs are looked for"),
    Documented("MS8_LIVENESS_REST_SECONDS", "liveness_rest_seconds",
               "while no job is active or due, the liveness check waits up to this long "
               "(until a job is sent or due); 0 checks every interval even when idle"),
    Documented("MS8_RESCUE_SECONDS", "rescue_seconds",
               "how often stalled and overdue jobs are reclaimed", "the stall timeout"),
    Documented("MS8_TIMEOUT_GRACE_SECONDS", "timeout_grace_seconds",
               "extra time before maintenance fails an overdue job",
               "the stall timeout, at least 10"),
    Documented("MS8_MAX_RUN_SECONDS", "max_run_seconds", "the longest a handler may extend "
               "its run to (ctx.extend_deadline), counted from its start"),
    Documented("MS8_PRUNE_SECONDS", "prune_seconds", "how often history retention is pruned"),
    Documented("MS8_PRUNE_CHUNK", "prune_chunk", "finished jobs deleted per pruning statement"),
    Documented("MS8_BATCH_CHECK_SECONDS", "batch_check_seconds",
               "re-check of unfinished batches"),
    Documented("MS8_SAMPLE_SECONDS", "sample_seconds",
               "how often queue depth and fleet load are sampled for the dashboard's charts"),
    Documented("MS8_JOB_LOG_LEVEL", "job_log_level", "level of the line logged per job end: "
               "info or debug (a final failure is always a warning)"),
)


def epilog(defaults: WorkerSettings) -> str:
    """The --help text after the flags: every environment-only setting and its default."""
    lines = describe("Other settings (environment only; durations in seconds unless named "
                     "_MS):", defaults, ENVIRONMENT_ONLY)
    lines += [
        "  MS8_WORKER_LOOP (uvloop)",
        "      event loop: uvloop, or asyncio (the standard one)",
        *shared_settings(("DATABASE_URL", "DATABASE_DIRECT_URL", "MS8_SCHEMA", "MS8_POOL_MAX",
                          "MS8_PGBOUNCER", "MS8_AUTO_MIGRATE", "MS8_LOG_LEVEL", "MS8_LOG_FORMAT")),
        "",
        "Signals: SIGTERM or SIGINT stops fetching, lets running jobs finish for the grace",
        "period, then hands the rest back to the queue (no attempt counted); a second signal",
        "ends the grace period at once.",
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    d = WorkerSettings.from_env({"MS8_WORKER_ID": "help"})  # the defaults, as computed
    polling = WorkerSettings.from_env({"MS8_WORKER_ID": "help", "MS8_POLL_ONLY": "true"})
    p = argparse.ArgumentParser(
        prog="python -m worker", description=DESCRIPTION, epilog=epilog(d),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queues", metavar="SPEC", help=(
        "queues to run and their concurrency, e.g. 'collect-analytics=20,fresh-data=5'; "
        "a queue without '=N' gets --concurrency (default: every queue with a handler) "
        "[MS8_WORKER_QUEUES]"))
    p.add_argument("--concurrency", metavar="N", help=(
        "jobs at once per queue not given '=N' (default: what the queue's handler declares, "
        f"else {d.concurrency}) [MS8_WORKER_CONCURRENCY]"))
    p.add_argument("--id", dest="worker_id", metavar="ID", help=(
        "worker id in the registry and on its jobs (default host-pid-random) [MS8_WORKER_ID]"))
    p.add_argument("--handlers", metavar="MODULES", help=(
        "extra modules to import for their @handler registrations, comma-separated "
        "[MS8_WORKER_HANDLER_MODULES]"))
    p.add_argument("--poll-only", action="store_true", default=None, help=(
        "never LISTEN, only poll (for poolers that cannot LISTEN) [MS8_POLL_ONLY]"))
    p.add_argument("--poll", metavar="SECONDS", help=(
        f"safety-net poll interval ({d.poll_seconds:g}; {polling.poll_seconds:g} in poll-only "
        "mode) [MS8_POLL_SECONDS]"))
    p.add_argument("--heartbeat", metavar="SECONDS", help=(
        f"heartbeat interval of active jobs ({d.heartbeat_seconds:g}) [MS8_HEARTBEAT_SECONDS]"))
    p.add_argument("--stall", metavar="SECONDS", help=(
        f"a job without heartbeat for this long is reclaimed ({d.stall_seconds:g}) "
        "[MS8_STALL_SECONDS]"))
    p.add_argument("--grace", metavar="SECONDS", help=(
        f"on SIGTERM, how long running jobs may finish ({d.grace_seconds:g}) "
        "[MS8_WORKER_GRACE_SECONDS]"))
    p.add_argument("--metrics-port", metavar="PORT", help=(
        "serve Prometheus metrics on this port (off) [MS8_WORKER_METRICS_PORT]"))
    p.add_argument("--no-maintenance", action="store_true", default=None, help=(
        "never run fleet maintenance in this worker [MS8_MAINTENANCE=false]"))
    p.add_argument("--list-handlers", action="store_true", help=(
        "print the queues that have a handler and exit"))
    return p


def overlay(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, str]:
    """The environment with the given flags written over it."""
    merged = dict(env)
    for dest, (_flag, name) in FLAG_ENV.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if dest == "poll_only":
            merged[name] = "true"
        elif dest == "no_maintenance":
            merged[name] = "false"
        else:
            merged[name] = str(value)
    return merged


def explain(error: Exception) -> str:
    """An error message naming the flag too, where the variable has one."""
    text = str(error)
    for flag, name in FLAG_ENV.values():
        text = text.replace(name, f"{name} ({flag})")
    return text


async def run(
    settings: Settings, worker_settings: WorkerSettings, handlers: Mapping[str, Handler],
) -> int:
    db = await open_checked(settings, "worker", sessions=not worker_settings.poll_only,
                            fix=", or run the worker with --poll-only")
    metrics = WorkerMetrics(collectors())
    try:
        runner = Runner(db, worker_settings, handlers, metrics=metrics)
        if worker_settings.metrics_port is not None:
            port = metrics.serve(worker_settings.metrics_port)
            log.info("metrics served", port=port)
        return await _serve(runner)
    finally:
        metrics.close()
        await db.close()


async def _serve(runner: Runner) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.info("second signal: ending the grace period now", signal=signum)
            runner.hurry()
        else:
            log.info("signal received: stopping", signal=signal.Signals(signum).name)
            stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        starting = asyncio.create_task(runner.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await stop.wait()
        stopping.cancel()
        return 0 if await runner.stop() else 1
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    return startup.run("worker", lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    env = overlay(args, os.environ)
    try:
        settings = Settings.from_env(env)
        worker_settings = WorkerSettings.from_env(env)
        handlers = load(worker_settings.handler_modules)
    except (SettingsError, HandlerError) as error:
        raise Refusal(explain(error)) from None
    if args.list_handlers:
        for name, handler in sorted(handlers.items()):
            print(f"{name}\t{handler.__module__}.{handler.__qualname__}")
        return 0
    configure_logging("worker", settings.log_level, settings.log_format)
    try:
        Runner.check(worker_settings, handlers)
    except HandlerError as error:
        raise Refusal(explain(error)) from None
    try:
        return _run_loop(run(settings, worker_settings, handlers))
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return 1


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop (a dependency already, for the API): its event loop, transports and
    timers in C take about a third of the worker's CPU per job off (drain of 30,000
    no-op jobs: ~24,000 → ~32,000 jobs/s on the benchmark machine). ``MS8_WORKER_LOOP=
    asyncio`` keeps the standard loop."""
    uvloop: Any = None
    if os.environ.get("MS8_WORKER_LOOP", "uvloop") != "asyncio":
        with contextlib.suppress(ImportError):
            import uvloop
    return asyncio.run(main) if uvloop is None else uvloop.run(main)


if __name__ == "__main__":
    sys.exit(main())
