"""What a worker holds: running slots per queue, and the job attempts it answers for.

Two counts, on purpose different:

- a *slot* of a queue is taken while a handler of it runs: per-queue concurrency, and
  what a fetch may ask for (``free``);
- a job attempt is *held* from its fetch until its result is reported, it is handed
  back, or it is lost: what the heartbeat keeps alive and what the database counts as
  this worker's active jobs (fleet-wide caps count those).

Attempts are held by identity (the ``Job`` fetched), not by id: when a job comes back
to this worker while an older attempt of it is still ending, letting go of the old
attempt must not drop the new one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from shared.queue import Job
from worker.metrics import WorkerMetrics


class Slots:
    def __init__(self, concurrency: Mapping[str, int], metrics: WorkerMetrics) -> None:
        self.concurrency = dict(concurrency)
        self._metrics = metrics
        self._running: Counter[str] = Counter()
        self._held: dict[int, Job] = {}
        self._held_per_queue: dict[str, int] = {}

    def free(self, queue: str) -> int:
        return self.concurrency[queue] - self._running[queue]

    def held_ids(self) -> set[int]:
        return set(self._held)

    def take(self, job: Job) -> None:
        """A fetched attempt: it takes a slot and is held."""
        self._running[job.queue] += 1
        if job.id not in self._held:  # else: an earlier attempt of it was still held
            self._count_held(job.queue, 1)
        self._held[job.id] = job

    def ended(self, job: Job) -> None:
        """Its handler ended: the slot is free (the attempt may still be held)."""
        self._running[job.queue] -= 1

    def let_go(self, job: Job) -> None:
        """This attempt is no longer ours to answer for (reported, lost, cancelled, handed
        back); a newer attempt of the same job, fetched meanwhile, stays held."""
        if self._held.get(job.id) is job:
            del self._held[job.id]
            self._count_held(job.queue, -1)

    def _count_held(self, queue: str, change: int) -> None:
        # The active-jobs gauge reads these counts when scraped: a gauge's inc/dec takes
        # a lock per call, twice per job (7 % of the worker's samples draining).
        if queue not in self._held_per_queue:
            self._metrics.active(queue).set_function(
                lambda: self._held_per_queue[queue])
            self._held_per_queue[queue] = 0
        self._held_per_queue[queue] += change
