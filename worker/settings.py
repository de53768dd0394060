"""Worker settings: the environment (and the command line, see ``cli``) → a frozen dataclass.

Every value is checked once, at start; a bad one stops the process with an error naming
the variable and the value. Defaults aim at a fleet that is fast when busy and silent
when idle: with nothing to do, a worker issues a few statements a minute (listener
health check, registry touch, safety-net poll) and its leader a few more (maintenance).

Invariants checked here:
- a heartbeat runs at least twice per stall timeout, so a live worker is never mistaken
  for a dead one (``MS8_HEARTBEAT_SECONDS`` * 2 <= ``MS8_STALL_SECONDS``);
- queue names follow the core's rule (``shared.queue.validation.QUEUE_NAME``).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from shared.queue import MAX_RUN_TIMEOUT_SECONDS, QUEUE_NAME
from shared.settings import (
    SettingsError,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
)

MAX_CONCURRENCY = 10_000
DAY = 86400.0


def parse_queues(
    name: str, raw: tuple[str, ...], default: int | None,
) -> Mapping[str, int | None]:
    """``("collect-analytics=20", "fresh-data")`` → {"collect-analytics": 20,
    "fresh-data": default} (None: the queue's default, resolved by ``concurrency_of``)."""
    queues: dict[str, int | None] = {}
    for item in raw:
        queue, sep, count = item.partition("=")
        queue = queue.strip()
        if not QUEUE_NAME.fullmatch(queue):
            raise SettingsError(
                f"{name}: {queue!r} is not a queue name (1-63 characters of a-z, 0-9, "
                "'_', '.', '-', starting with a letter or digit)")
        if queue in queues:
            raise SettingsError(f"{name}: queue {queue!r} is listed twice")
        if not sep:
            queues[queue] = default
            continue
        try:
            concurrency = int(count.strip())
        except ValueError:
            raise SettingsError(
                f"{name}: the concurrency of {queue!r} must be a whole number, "
                f"got {count.strip()!r}") from None
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise SettingsError(
                f"{name}: the concurrency of {queue!r} must be between 1 and "
                f"{MAX_CONCURRENCY}, got {concurrency}")
        queues[queue] = concurrency
    return MappingProxyType(queues)


def default_worker_id() -> str:
    """host-pid-random: unique across restarts (a pid is reused; the suffix is not)."""
    return f"{socket.gethostname()[:100]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class WorkerSettings:
    """How one worker process runs. Durations are in seconds."""

    # {queue: concurrency, or None for the queue's default}; empty means every queue that
    # has a handler, each at its default.
    queues: Mapping[str, int | None]
    # The default of a queue whose handler declares none; when set explicitly
    # (``concurrency_given``), the concurrency of every queue not given one by name.
    concurrency: int
    worker_id: str
    # Extra modules to import for their @handler registrations.
    handler_modules: tuple[str, ...]

    # Waking up.
    poll_only: bool
    poll_seconds: float
    listen_check_seconds: float

    # Holding jobs.
    # "durable": a claim is committed as every write is (its WAL flushed first); "async":
    # without waiting for the flush, so a PostgreSQL crash may forget a claim whose
    # handler already runs, and the job runs a second time.
    claim_commit: str
    heartbeat_seconds: float
    stall_seconds: float
    grace_seconds: float
    db_timeout_seconds: float
    # How long a handler may extend its run to, from its start (ctx.extend_deadline).
    max_run_seconds: float

    # Reporting results.
    complete_window_seconds: float
    complete_batch: int

    # The registry.
    registry_seconds: float
    forget_worker_seconds: float

    # Maintenance (on the leader only).
    maintenance: bool
    leader_wait_seconds: float
    liveness_seconds: float
    liveness_rest_seconds: float  # the longest the check waits while the fleet is idle
    rescue_seconds: float
    timeout_grace_seconds: float
    prune_seconds: float
    prune_chunk: int
    batch_check_seconds: float
    # Queue depth and fleet load, sampled for the dashboard's charts.
    sample_seconds: float

    metrics_port: int | None
    # The level of the log line of an ordinary job end (final failures: warning).
    job_log_level: str
    concurrency_given: bool = False  # MS8_WORKER_CONCURRENCY (or --concurrency) was set

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        env = os.environ if env is None else env
        concurrency = env_int(env, "MS8_WORKER_CONCURRENCY", 10, low=1, high=MAX_CONCURRENCY)
        concurrency_given = env_str(env, "MS8_WORKER_CONCURRENCY") is not None
        queues = parse_queues("MS8_WORKER_QUEUES", env_list(env, "MS8_WORKER_QUEUES"),
                              concurrency if concurrency_given else None)
        worker_id = env_str(env, "MS8_WORKER_ID") or default_worker_id()
        if len(worker_id) > 200:
            raise SettingsError(
                f"MS8_WORKER_ID must be at most 200 characters, got {len(worker_id)}")

        poll_only = env_bool(env, "MS8_POLL_ONLY", False)
        # Polling is the only path in poll-only mode, a rare safety net otherwise.
        poll_seconds = env_float(
            env, "MS8_POLL_SECONDS", 2.0 if poll_only else 60.0, low=0.05, high=DAY)

        stall = env_float(env, "MS8_STALL_SECONDS", 60.0, low=0.2, high=DAY)
        heartbeat = env_float(env, "MS8_HEARTBEAT_SECONDS", 10.0, low=0.05, high=DAY)
        if heartbeat * 2 > stall:
            raise SettingsError(
                f"MS8_HEARTBEAT_SECONDS ({heartbeat:g}) must be at most half of "
                f"MS8_STALL_SECONDS ({stall:g}), or live workers would look dead")

        registry = env_float(env, "MS8_WORKER_REGISTRY_SECONDS", 60.0, low=0.1, high=DAY)
        forget = env_float(
            env, "MS8_WORKER_FORGET_SECONDS", max(300.0, registry * 5), low=0.5, high=30 * DAY)
        if forget < registry * 2:
            raise SettingsError(
                f"MS8_WORKER_FORGET_SECONDS ({forget:g}) must be at least twice "
                f"MS8_WORKER_REGISTRY_SECONDS ({registry:g}), or live workers would be "
                "forgotten")

        port = env_int(env, "MS8_WORKER_METRICS_PORT", 0, low=0, high=65535)
        return cls(
            queues=queues,
            concurrency=concurrency,
            worker_id=worker_id,
            handler_modules=env_list(env, "MS8_WORKER_HANDLER_MODULES"),
            poll_only=poll_only,
            poll_seconds=poll_seconds,
            listen_check_seconds=env_float(
                env, "MS8_LISTEN_CHECK_SECONDS", 30.0, low=0.05, high=3600),
            claim_commit=env_choice(env, "MS8_CLAIM_COMMIT", "durable", ("async", "durable")),
            heartbeat_seconds=heartbeat,
            stall_seconds=stall,
            grace_seconds=env_float(env, "MS8_WORKER_GRACE_SECONDS", 30.0, low=0, high=DAY),
            db_timeout_seconds=env_float(
                env, "MS8_WORKER_DB_TIMEOUT_SECONDS", 30.0, low=0.1, high=3600),
            max_run_seconds=env_float(
                env, "MS8_MAX_RUN_SECONDS", 6 * 3600.0, low=1.0, high=MAX_RUN_TIMEOUT_SECONDS),
            complete_window_seconds=env_float(
                env, "MS8_COMPLETE_WINDOW_MS", 5.0, low=0, high=10_000) / 1000,
            complete_batch=env_int(env, "MS8_COMPLETE_BATCH", 500, low=1, high=10_000),
            registry_seconds=registry,
            forget_worker_seconds=forget,
            maintenance=env_bool(env, "MS8_MAINTENANCE", True),
            leader_wait_seconds=env_float(
                env, "MS8_LEADER_WAIT_SECONDS", 60.0, low=0.1, high=3600),
            liveness_seconds=env_float(env, "MS8_LIVENESS_SECONDS", 1.0, low=0.05, high=3600),
            liveness_rest_seconds=env_float(
                env, "MS8_LIVENESS_REST_SECONDS", 60.0, low=0, high=DAY),
            rescue_seconds=env_float(env, "MS8_RESCUE_SECONDS", stall, low=0.05, high=DAY),
            timeout_grace_seconds=env_float(
                env, "MS8_TIMEOUT_GRACE_SECONDS", max(stall, 10.0), low=0, high=DAY),
            prune_seconds=env_float(env, "MS8_PRUNE_SECONDS", 300.0, low=0.05, high=DAY),
            prune_chunk=env_int(env, "MS8_PRUNE_CHUNK", 1000, low=1, high=100_000),
            batch_check_seconds=env_float(
                env, "MS8_BATCH_CHECK_SECONDS", 300.0, low=0.05, high=DAY),
            sample_seconds=env_float(env, "MS8_SAMPLE_SECONDS", 60.0, low=0.05, high=3600),
            metrics_port=port or None,
            job_log_level=env_choice(env, "MS8_JOB_LOG_LEVEL", "info", ("debug", "info")),
            concurrency_given=concurrency_given,
        )

    def concurrency_of(
        self, handled: Mapping[str, object], declared: Mapping[str, int] | None = None,
    ) -> dict[str, int]:
        """The queues to run (those asked for, or every queue with a handler) and their
        concurrency: as asked for by name, else ``MS8_WORKER_CONCURRENCY`` when it was
        set, else what the queue's handler declares (``declared``), else 10."""
        declared = {} if declared is None or self.concurrency_given else declared
        wanted = self.queues or dict.fromkeys(sorted(handled))
        return {queue: declared.get(queue, self.concurrency) if n is None else n
                for queue, n in wanted.items()}
