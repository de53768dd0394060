"""``python -m scheduler``: run the scheduler, or manage schedules from the command line.

    python -m scheduler [run]                     run until SIGTERM/SIGINT
    python -m scheduler list [--json]             schedules with next and last firing
    python -m scheduler show NAME [--firings N] [--json]
    python -m scheduler add NAME CRON --queue Q [--timezone TZ] [--data JSON]
                                  [--options JSON] [--disabled]
    python -m scheduler update NAME [--cron CRON] [--timezone TZ] [--queue Q]
                                  [--data JSON] [--options JSON]
    python -m scheduler enable|disable|delete|run-now NAME

Every change goes through the queue core, which validates it whole (nothing is saved
when a field is bad) and NOTIFYs running schedulers, which reload without a restart.
Exit status: 0 done, 1 not found or not possible now, 2 bad input or settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from scheduler.service import SchedulerService
from scheduler.settings import SchedulerSettings
from shared import queue, startup
from shared.db import Database
from shared.logging import configure_logging, get_logger
from shared.queue import Firing, InvalidInput, InvalidState, NotFound, Schedule
from shared.settings import Settings
from shared.settings_help import Documented, describe, shared_settings
from shared.startup import open_checked

log = get_logger("scheduler")

SETTINGS = (
    Documented("MS8_SCHEDULER_GRACE_SECONDS", "grace_seconds", "a fire time missed while no "
               "scheduler ran is sent on start if it is at most this old"),
    Documented("MS8_SCHEDULER_RESYNC_SECONDS", "resync_seconds",
               "full reload + catch-up, a safety net under NOTIFY"),
    Documented("MS8_SCHEDULER_LISTEN_CHECK_SECONDS", "listen_check_seconds",
               "health check of the LISTEN connection"),
    Documented("MS8_SCHEDULER_DB_TIMEOUT_SECONDS", "db_timeout_seconds",
               "bound on each firing transaction"),
    Documented("MS8_SCHEDULER_FIRING_RETENTION_SECONDS", "firing_retention_seconds",
               "firings older than this are pruned (the latest of each schedule is kept)"),
    Documented("MS8_SCHEDULER_PRUNE_SECONDS", "prune_seconds", "how often firings are pruned"),
)


def epilog() -> str:
    """The --help text after the commands: the settings with the defaults the code computes."""
    lines = describe("Settings (environment; durations in seconds):",
                     SchedulerSettings.from_env({}), SETTINGS)
    lines += [
        *shared_settings(("DATABASE_URL", "DATABASE_DIRECT_URL", "MS8_SCHEMA", "MS8_AUTO_MIGRATE",
                          "MS8_LOG_LEVEL", "MS8_LOG_FORMAT")),
        "",
        "A schedule whose queue does not exist creates that queue (default policy) when saved.",
        "Cron: five fields (minute hour day-of-month month day-of-week) or six with a leading",
        "second; time zones are IANA names (UTC, Europe/Berlin).",
    ]
    return "\n".join(lines) + "\n"


class UsageError(Exception):
    """A command-line value is malformed (exit status 2)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m scheduler", description="Turn cron schedules into ms8-jobs jobs.",
        epilog=epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="run the scheduler (the default)")
    listing = sub.add_parser("list", help="schedules with their next and last firing")
    listing.add_argument("--json", action="store_true", help="one JSON document")
    show = sub.add_parser("show", help="one schedule and its latest firings")
    show.add_argument("name")
    show.add_argument("--firings", type=int, default=10, metavar="N",
                      help="how many firings to show (10)")
    show.add_argument("--json", action="store_true", help="one JSON document")
    add = sub.add_parser("add", help="create a schedule")
    add.add_argument("name")
    add.add_argument("cron", help="e.g. '0 2 * * *' or '*/5 * * * * *' (seconds first)")
    add.add_argument("--queue", required=True, help="target queue (created if new)")
    add.add_argument("--timezone", default="UTC", help="IANA time zone (UTC)")
    add.add_argument("--data", metavar="JSON", help="data of each job ({})")
    add.add_argument("--options", metavar="JSON", help=(
        "job options: priority, retry_limit, retry_delay, retry_backoff, retry_delay_max, "
        "run_timeout, singleton_key"))
    add.add_argument("--disabled", action="store_true", help="create it disabled")
    update = sub.add_parser("update", help="change a schedule (options are replaced whole)")
    update.add_argument("name")
    update.add_argument("--cron")
    update.add_argument("--timezone")
    update.add_argument("--queue")
    update.add_argument("--data", metavar="JSON")
    update.add_argument("--options", metavar="JSON")
    for command, text in (("enable", "enable a schedule (fires from now on)"),
                          ("disable", "disable a schedule"),
                          ("delete", "delete a schedule and its firings"),
                          ("run-now", "send the schedule's job now (a manual firing)")):
        sub.add_parser(command, help=text).add_argument("name")
    return p


def _json_arg(flag: str, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise UsageError(f"{flag}: {text!r} is not valid JSON ({error})") from None


def _iso(moment: datetime | None, schedule: Schedule | None = None) -> str | None:
    if moment is None:
        return None
    return (moment.astimezone(schedule.timing.timezone) if schedule else moment).isoformat()


def firing_dict(firing: Firing | None) -> dict[str, Any] | None:
    if firing is None:
        return None
    return {"fire_time": firing.fire_time.isoformat(), "kind": firing.kind,
            "job_id": firing.job_id, "job_created": firing.job_created,
            "fired_at": firing.fired_at.isoformat()}


def schedule_dict(schedule: Schedule, now: datetime) -> dict[str, Any]:
    return {
        "name": schedule.name, "cron": schedule.cron, "timezone": schedule.timezone,
        "queue": schedule.queue, "data": schedule.data, "options": schedule.options,
        "enabled": schedule.enabled, "next_fire": _iso(schedule.next_fire(now), schedule),
        "last_firing": firing_dict(schedule.last_firing),
        "armed_at": schedule.armed_at.isoformat(), "created_at": schedule.created_at.isoformat(),
        "updated_at": schedule.updated_at.isoformat(),
    }


def print_table(schedules: list[Schedule], now: datetime) -> None:
    rows = [("NAME", "ENABLED", "CRON", "TIMEZONE", "QUEUE", "NEXT FIRE", "LAST FIRING")]
    for s in schedules:
        last = s.last_firing
        last_text = "-" if last is None else (
            f"{_iso(last.fire_time, s)} {last.kind} job {last.job_id}")
        rows.append((s.name, "yes" if s.enabled else "no", s.cron, s.timezone, s.queue,
                     _iso(s.next_fire(now), s) or "-", last_text))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


async def manage(db: Database, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    command = args.command
    if command == "list":
        schedules = await queue.list_schedules(db)
        if args.json:
            print_json([schedule_dict(s, now) for s in schedules])
        else:
            print_table(schedules, now)
        return 0
    if command == "show":
        schedule = await queue.get_schedule(db, args.name)
        if not 1 <= args.firings <= 1000:
            raise UsageError(f"--firings must be between 1 and 1000, got {args.firings}")
        fired = await queue.list_firings(db, args.name, limit=args.firings)
        document = {**schedule_dict(schedule, now), "firings": [firing_dict(f) for f in fired]}
        if args.json:
            print_json(document)
        else:
            print_table([schedule], now)
            for firing in fired:
                print(f"  {_iso(firing.fire_time, schedule)}  {firing.kind:<9}  "
                      f"job {firing.job_id}{'' if firing.job_created else ' (existing)'}")
        return 0
    if command == "add":
        schedule = await queue.create_schedule(
            db, args.name, args.cron, queue=args.queue, timezone=args.timezone,
            data=_json_arg("--data", args.data), options=_json_arg("--options", args.options),
            enabled=not args.disabled)
        print(f"schedule {schedule.name!r} created; next fire "
              f"{_iso(schedule.next_fire(now), schedule) or '- (disabled)'}")
        return 0
    if command == "update":
        changes: dict[str, Any] = {
            name: value for name, value in (
                ("cron", args.cron), ("timezone", args.timezone), ("queue", args.queue),
                ("data", _json_arg("--data", args.data)),
                ("options", _json_arg("--options", args.options)))
            if value is not None}
        if not changes:
            raise UsageError("update: give at least one of --cron, --timezone, --queue, "
                             "--data, --options")
        schedule = await queue.update_schedule(db, args.name, **changes)
        print(f"schedule {schedule.name!r} updated; next fire "
              f"{_iso(schedule.next_fire(now), schedule) or '- (disabled)'}")
        return 0
    if command in ("enable", "disable"):
        change = queue.enable_schedule if command == "enable" else queue.disable_schedule
        schedule = await change(db, args.name)
        print(f"schedule {schedule.name!r} {command}d")
        return 0
    if command == "delete":
        await queue.delete_schedule(db, args.name)
        print(f"schedule {args.name!r} deleted")
        return 0
    assert command == "run-now"
    firing = await queue.run_now(db, args.name)
    print(f"schedule {args.name!r} fired manually: job {firing.job_id}"
          f"{'' if firing.job_created else ' (an existing job holds its singleton key)'}")
    return 0


async def run_command(settings: Settings, args: argparse.Namespace) -> int:
    try:
        db = await asyncio.wait_for(open_checked(settings, "scheduler cli"),
                                    timeout=settings.connect_timeout + 20)
    except TimeoutError:
        print("error: the database is unreachable", file=sys.stderr)
        return 1
    try:
        return await manage(db, args)
    except (InvalidInput, UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (NotFound, InvalidState) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        await db.close()


async def serve(settings: Settings, scheduler_settings: SchedulerSettings) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        log.info("signal received: stopping", signal=signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        opening = asyncio.create_task(open_checked(settings, "scheduler"))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not opening.done():
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opening
            return 0
        stopping.cancel()
        db = opening.result()
        try:
            service = SchedulerService(db, scheduler_settings)
            await service.start()
            try:
                await stop.wait()
            finally:
                await service.stop()
        finally:
            await db.close()
        return 0
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    return startup.run("scheduler", lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "run"
    settings = Settings.from_env(os.environ)
    scheduler_settings = SchedulerSettings.from_env(os.environ)
    configure_logging("scheduler" if command == "run" else "scheduler-cli",
                      settings.log_level, settings.log_format)
    if command == "run":
        return asyncio.run(serve(settings, scheduler_settings))
    return asyncio.run(run_command(settings, args))
