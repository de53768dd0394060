"""How big each scenario is: the full run (the issue's sizes), ``--quick`` and ``--tiny``.

The full run must finish in under ten minutes on a 2-core machine, ``--quick`` in about
one; ``--tiny`` only proves that every code path still works (the smoke test). A peer
slower than ``drain_cap`` seconds is measured over the part of the queue it drained by
then (its rate, not its total time, is what the table shows). The scale-out scenario
adds about two minutes to the full run, the soak about seven (1,000,000 jobs at
2,500/s: autovacuum visits a database once a minute by default, and the soak's steady
state begins only after two whole passes of each table, three to four minutes in);
``--soak-jobs`` and ``--soak-rate`` change the soak's size and rate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    name: str
    reps: int                  # repetitions of the short scenarios; the median is shown
    enqueue_jobs: int
    drain_jobs: int
    drain_cap: float           # seconds before a slow drain is cut short
    latency_jobs: int
    latency_rate: float        # sends per second
    idle_seconds: float
    idle_settle: float         # seconds after start-up before counting
    api_seconds: float
    api_clients: int
    api_many_size: int         # jobs per request of the many-jobs endpoint
    history_rows: int
    fetch_reps: int            # fetches timed per history size
    fetch_batch: int           # jobs per fetch
    start_timeout: float       # seconds for a worker to run its first job
    fanout_user_roles: int     # the nightly fan-out's user-roles
    fanout_cap: float          # seconds after the firing before it counts as failed
    load_seconds: float        # the API under sustained load, workers draining
    load_clients: int
    scale_drain_jobs: int      # jobs drained by 1, 2 and 4 workers
    scale_reps: int            # runs of each point, interleaved; the median is shown
    scale_api_seconds: float   # single sends to 1 and 2 API processes, each run
    soak_jobs: int             # jobs through the queue at a steady rate
    soak_rate: float           # jobs sent per second
    soak_retention: float      # seconds the soak's queue keeps finished jobs
    soak_prune_seconds: float  # the workers' pruner interval (MS8_PRUNE_SECONDS)
    soak_checkpoints: int      # readings while sending (a start and an end besides)
    soak_fetch_reps: int       # fetches timed at each reading


FULL = Sizes(
    name="full", reps=3, enqueue_jobs=30_000, drain_jobs=30_000, drain_cap=30.0,
    latency_jobs=300, latency_rate=50.0, idle_seconds=30.0, idle_settle=5.0,
    api_seconds=10.0, api_clients=16, api_many_size=1000, history_rows=1_000_000,
    fetch_reps=400, fetch_batch=10, start_timeout=60.0,
    fanout_user_roles=30_000, fanout_cap=600.0, load_seconds=60.0, load_clients=32,
    scale_drain_jobs=60_000, scale_reps=3, scale_api_seconds=6.0,
    soak_jobs=1_000_000, soak_rate=2500.0, soak_retention=60.0, soak_prune_seconds=5.0,
    soak_checkpoints=20, soak_fetch_reps=50,
)
QUICK = Sizes(
    name="quick", reps=1, enqueue_jobs=10_000, drain_jobs=10_000, drain_cap=8.0,
    latency_jobs=100, latency_rate=50.0, idle_seconds=10.0, idle_settle=3.0,
    api_seconds=3.0, api_clients=16, api_many_size=1000, history_rows=100_000,
    fetch_reps=100, fetch_batch=10, start_timeout=60.0,
    fanout_user_roles=5_000, fanout_cap=300.0, load_seconds=10.0, load_clients=32,
    scale_drain_jobs=20_000, scale_reps=1, scale_api_seconds=3.0,
    soak_jobs=100_000, soak_rate=5000.0, soak_retention=5.0, soak_prune_seconds=1.0,
    soak_checkpoints=5, soak_fetch_reps=30,
)
TINY = Sizes(
    name="tiny", reps=1, enqueue_jobs=50, drain_jobs=50, drain_cap=30.0,
    latency_jobs=5, latency_rate=50.0, idle_seconds=1.0, idle_settle=0.5,
    api_seconds=0.5, api_clients=4, api_many_size=10, history_rows=1_000,
    fetch_reps=5, fetch_batch=10, start_timeout=60.0,
    fanout_user_roles=50, fanout_cap=120.0, load_seconds=1.0, load_clients=4,
    scale_drain_jobs=50, scale_reps=1, scale_api_seconds=0.5,
    soak_jobs=2_000, soak_rate=1000.0, soak_retention=1.0, soak_prune_seconds=0.5,
    soak_checkpoints=2, soak_fetch_reps=5,
)
