"""Scheduler settings: the environment → a frozen dataclass, checked once at start.

A bad value stops the process with an error naming the variable. Durations are seconds.

Invariant checked here: firings are kept longer than the grace window
(``MS8_SCHEDULER_FIRING_RETENTION_SECONDS`` > ``MS8_SCHEDULER_GRACE_SECONDS``), so a
fire time that may still be caught up always has its firing row, and is never sent twice.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from shared.settings import SettingsError, env_float

DAY = 86400.0


@dataclass(frozen=True)
class SchedulerSettings:
    # How late a fire time may still be sent (on start, after an outage, or a late wake-up).
    grace_seconds: float
    # Full reload of every schedule plus a catch-up pass, as a safety net under NOTIFY.
    resync_seconds: float
    # Health check of the LISTEN connection (how soon a lost database is noticed).
    listen_check_seconds: float
    # Bound on each firing transaction.
    db_timeout_seconds: float
    # Firings older than this are pruned (the latest of each schedule is kept).
    firing_retention_seconds: float
    prune_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SchedulerSettings:
        env = os.environ if env is None else env
        # At least a second: a timer's wake-up is always a little late.
        grace = env_float(env, "MS8_SCHEDULER_GRACE_SECONDS", 3600.0, low=1, high=7 * DAY)
        retention = env_float(
            env, "MS8_SCHEDULER_FIRING_RETENTION_SECONDS", 30 * DAY, low=1, high=3660 * DAY)
        if retention <= grace:
            raise SettingsError(
                f"MS8_SCHEDULER_FIRING_RETENTION_SECONDS ({retention:g}) must be longer than "
                f"MS8_SCHEDULER_GRACE_SECONDS ({grace:g}), or a fire time could be sent twice")
        return cls(
            grace_seconds=grace,
            resync_seconds=env_float(
                env, "MS8_SCHEDULER_RESYNC_SECONDS", 300.0, low=0.1, high=DAY),
            listen_check_seconds=env_float(
                env, "MS8_SCHEDULER_LISTEN_CHECK_SECONDS", 10.0, low=0.05, high=3600),
            db_timeout_seconds=env_float(
                env, "MS8_SCHEDULER_DB_TIMEOUT_SECONDS", 30.0, low=0.1, high=3600),
            firing_retention_seconds=retention,
            prune_seconds=env_float(env, "MS8_SCHEDULER_PRUNE_SECONDS", 3600.0, low=0.1, high=DAY),
        )
