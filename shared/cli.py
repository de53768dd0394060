"""``ms8-jobs``: operate the queue from a terminal.

    ms8-jobs migrate                      apply missing migrations
    ms8-jobs db {start,stop,status,url}   the embedded PostgreSQL (no DATABASE_URL)
    ms8-jobs stats                        jobs per queue and state
    ms8-jobs send QUEUE [JSON] [--priority N] [--delay S] [--singleton-key K]
    ms8-jobs job ID                       one job as JSON
    ms8-jobs cancel|resume ID...          act on jobs
    ms8-jobs queue {show,pause,resume} NAME
    ms8-jobs queue cancel-waiting NAME    cancel every waiting job (active ones go on)
    ms8-jobs queue set NAME key=value...  change a queue's policy
    ms8-jobs redrive DEAD_LETTER_QUEUE    send dead letters back

More commands come from ``ms8_jobs.commands`` entry points (``ms8-jobs seed`` of the
analytics package, say): each names a function that adds its sub-parser and returns the
coroutine function to run with the database and the parsed arguments. Entry points keep
the dependency pointing the right way: the package adds to the CLI, ``shared`` never
imports it.

Errors are printed as one line naming what is wrong, with exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from typing import Any

import orjson

from shared import queue, startup
from shared.db import Database, embedded, open_database
from shared.settings import Settings, SettingsError


def _print_json(value: Any) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _parse_value(raw: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


async def _with_db(settings: Settings, action: Callable[[Database], Awaitable[None]]) -> None:
    db = await open_database(settings, "cli")
    try:
        # Through a transaction-mode pooler without MS8_PGBOUNCER its cached statements
        # would collide mid-command: refused first, naming the fix, as the processes are.
        await startup.check_pooler(db, sessions=False)
        await action(db)
    finally:
        await db.close()


async def _stats(db: Database) -> None:
    counts = await queue.count_jobs(db)
    states = list(queue.ALL_STATES)
    width = max([len("queue"), *(len(name) for name in counts)])
    print(f"{'queue':<{width}}  " + "  ".join(f"{s:>9}" for s in states))
    for name in sorted(counts):
        print(f"{name:<{width}}  " + "  ".join(f"{counts[name].get(s, 0):>9}" for s in states))


COMMANDS_GROUP = "ms8_jobs.commands"
Command = Callable[[Database, argparse.Namespace], Awaitable[None]]


def _add_commands(sub: Any) -> dict[str, Command]:
    """The sub-commands of installed packages (entry points of ``COMMANDS_GROUP``)."""
    return {point.name: point.load()(sub) for point in entry_points(group=COMMANDS_GROUP)}


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    parser = argparse.ArgumentParser(prog="ms8-jobs", description="Operate ms8-jobs.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply missing migrations")
    db = sub.add_parser("db", help="the embedded PostgreSQL")
    db.add_argument("action", choices=["start", "stop", "status", "url"])
    sub.add_parser("stats", help="jobs per queue and state")
    send = sub.add_parser("send", help="send one job")
    send.add_argument("queue")
    send.add_argument("data", nargs="?", default="{}", help="job data as JSON")
    send.add_argument("--priority", type=int, default=0)
    send.add_argument("--delay", type=float)
    send.add_argument("--singleton-key")
    job = sub.add_parser("job", help="show one job")
    job.add_argument("id", type=int)
    for name in ("cancel", "resume"):
        act = sub.add_parser(name, help=f"{name} jobs")
        act.add_argument("ids", type=int, nargs="+")
    q = sub.add_parser("queue", help="show or change a queue")
    q.add_argument("action", choices=["show", "pause", "resume", "set", "cancel-waiting"])
    q.add_argument("name")
    q.add_argument("settings", nargs="*", help="key=value (for set)")
    redrive = sub.add_parser("redrive", help="send dead letters back to their queues")
    redrive.add_argument("queue")
    return parser, _add_commands(sub)


async def _run(
    args: argparse.Namespace, settings: Settings, commands: dict[str, Command],
) -> None:
    if args.command == "migrate":
        from shared.migrate import run_migrations

        await run_migrations()
        return

    async def act(db: Database) -> None:
        if args.command in commands:
            await commands[args.command](db, args)
        elif args.command == "stats":
            await _stats(db)
        elif args.command == "send":
            data = orjson.loads(args.data)
            sent = await queue.send(db, args.queue, data, priority=args.priority,
                                    delay=args.delay, singleton_key=args.singleton_key)
            _print_json(sent)
        elif args.command == "job":
            _print_json(await queue.get_job(db, args.id))
        elif args.command == "cancel":
            _print_json({"cancelled": await queue.cancel(db, args.ids)})
        elif args.command == "resume":
            _print_json({"resumed": await queue.resume(db, args.ids)})
        elif args.command == "redrive":
            _print_json({"redriven": await queue.redrive(db, args.queue)})
        elif args.action == "show":
            _print_json(await queue.get_queue(db, args.name))
        elif args.action == "pause":
            _print_json(await queue.pause_queue(db, args.name))
        elif args.action == "resume":
            _print_json(await queue.resume_queue(db, args.name))
        elif args.action == "cancel-waiting":
            _print_json({"cancelled": await queue.cancel_waiting(db, args.name)})
        else:
            changes = {}
            for item in args.settings:
                key, sep, raw = item.partition("=")
                if not sep:
                    raise queue.InvalidInput(item, "settings are written key=value")
                changes[key] = _parse_value(raw)
            _print_json(await queue.update_queue(db, args.name, **changes))

    await _with_db(settings, act)


def main(argv: list[str] | None = None) -> None:
    sys.exit(startup.run("ms8-jobs", lambda: _main(argv)))


def _main(argv: list[str] | None) -> int:
    parser, commands = _parser()
    args = parser.parse_args(argv)
    if args.command == "db":
        try:
            return int(embedded().main([args.action]))
        except SettingsError as error:
            print(f"ms8-jobs: {error}", file=sys.stderr)
            return 2
    try:
        asyncio.run(_run(args, Settings.from_env(), commands))
    except (queue.QueueError, orjson.JSONDecodeError) as error:
        print(f"ms8-jobs: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    main()
