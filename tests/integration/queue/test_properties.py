"""The queue core under random sequences of everything that can happen to jobs.

A hypothesis state machine sends (singly, with singleton keys, into batches), fetches for
several workers, completes, fails, cancels, resumes, hands back, takes back from dead
workers, reclaims stalled jobs and seals batches, keeping a model of what every job must
be. After each step the database must agree with the model exactly:

- every job is in exactly one of ``jobs`` and ``history``, in the state, with the
  attempt, crash count and holder the model says (no job in two states, none held by two
  workers, an active job held by the worker that fetched it);
- the counts per queue and state (kept by triggers) add up to the jobs themselves;
- a fetch hands out only waiting jobs of the queues asked, as many as asked or all there
  are, never leaving a higher-priority one behind;
- a batch's totals are its children's states, frozen when its last child ends, and its
  completion job is sent exactly once.

The machine runs in a thread of its own; each step runs the core on the test's event
loop (``run``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from shared import queue
from shared.db import Database
from shared.queue import InvalidState, JobSpec

T = TypeVar("T")

# a: one retry, two crashes; b: no retry, one crash, dead letters to "dead".
POLICIES = {
    "a": {"retry_limit": 1, "crash_limit": 2},
    "b": {"retry_limit": 0, "crash_limit": 1, "dead_letter": "dead"},
    "dead": {"retry_limit": 0, "crash_limit": 1},
    "done": {"retry_limit": 0, "crash_limit": 1},
}
WORKERS = ("w1", "w2", "w3")
KEYS = ("k1", "k2")
WAITING = ("created", "retry")
FINISHED = ("completed", "failed", "cancelled")


@dataclass
class ModelJob:
    queue: str
    priority: int = 0
    state: str = "created"
    attempt: int = 0
    crash_count: int = 0
    worker: str | None = None
    singleton_key: str | None = None
    batch_id: int | None = None


@dataclass
class ModelBatch:
    completes: bool  # has a completion queue
    sealed: bool = False
    frozen: dict[str, int] | None = None  # totals, once finished
    completion_job_id: int | None = None
    children: list[int] = field(default_factory=list)


class CoreMachine(RuleBasedStateMachine):
    db: Database
    loop: asyncio.AbstractEventLoop

    def __init__(self) -> None:
        super().__init__()
        self.jobs: dict[int, ModelJob] = {}
        self.batches: dict[int, ModelBatch] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    # ------------------------------------------------------------------ model helpers

    def ids(self, *states: str) -> list[int]:
        return sorted(i for i, j in self.jobs.items() if j.state in states)

    def held_by(self, worker: str) -> list[int]:
        return sorted(i for i, j in self.jobs.items()
                      if j.state == "active" and j.worker == worker)

    def key_taken(self, queue_name: str, key: str, but: int | None = None) -> int | None:
        for i, j in self.jobs.items():
            if (i != but and j.queue == queue_name and j.singleton_key == key
                    and j.state not in FINISHED):
                return i
        return None

    def end(self, job_id: int, state: str) -> None:
        job = self.jobs[job_id]
        job.state, job.worker = state, None
        if state == "failed" and POLICIES[job.queue].get("dead_letter"):
            self.dead_letters_expected += 1

    def back(self, job_id: int, *, crashed: bool) -> None:
        """Handed back (attempt given back), or taken back from a dead worker (a crash)."""
        job = self.jobs[job_id]
        job.attempt -= 1
        job.crash_count += crashed
        job.state = "retry" if job.attempt > 0 else "created"
        job.worker = None

    def crash(self, job_id: int) -> None:
        job = self.jobs[job_id]
        if job.crash_count + 1 >= POLICIES[job.queue]["crash_limit"]:
            job.crash_count += 1
            self.end(job_id, "failed")
        else:
            self.back(job_id, crashed=True)

    def learn_dead_letters(self, results: list[Any]) -> None:
        """Dead letters sent by the failures just made: new waiting jobs."""
        for result in results:
            if result.dead_letter_id is not None:
                self.jobs[result.dead_letter_id] = ModelJob(queue="dead")
                self.dead_letters_expected -= 1
        assert self.dead_letters_expected == 0, "a failed job of b sent no dead letter"

    def settle_batches(self) -> None:
        """Batches whose last child just ended finish now, once, sending their job."""
        for batch_id, batch in self.batches.items():
            if batch.frozen is not None or not batch.sealed:
                continue
            if any(self.jobs[c].state not in FINISHED for c in batch.children):
                continue
            batch.frozen = dict(Counter(self.jobs[c].state for c in batch.children))
            found = self.run(queue.get_batch(self.db, batch_id))
            assert found.finished_at is not None, f"batch {batch_id} did not finish"
            if batch.completes:
                assert found.completion_job_id is not None
                batch.completion_job_id = found.completion_job_id
                self.jobs[found.completion_job_id] = ModelJob(queue="done")

    # ------------------------------------------------------------------ rules

    @initialize()
    def fresh_schema(self) -> None:
        self.dead_letters_expected = 0

        async def reset() -> None:
            await self.db.pool.execute(
                "TRUNCATE ms8jobs.jobs, ms8jobs.history, ms8jobs.history_counts,"
                " ms8jobs.batches, ms8jobs.queues RESTART IDENTITY")
            for name in ("dead", "done", "a", "b"):
                await queue.create_queue(self.db, name, retry_delay_seconds=0.0,
                                         **POLICIES[name])
        self.run(reset())

    @rule(queue_name=st.sampled_from(["a", "b"]), priority=st.integers(-2, 2),
          key=st.none() | st.sampled_from(KEYS))
    def send(self, queue_name: str, priority: int, key: str | None) -> None:
        sent = self.run(queue.send(self.db, queue_name, {}, priority=priority,
                                   singleton_key=key))
        held = self.key_taken(queue_name, key) if key else None
        if held is not None:
            assert (sent.id, sent.created) == (held, False)
            return
        assert sent.created and sent.id not in self.jobs
        self.jobs[sent.id] = ModelJob(queue_name, priority, singleton_key=key)

    @rule(queues=st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=4),
          sealed=st.booleans(), completes=st.booleans())
    def send_batch(self, queues: list[str], sealed: bool, completes: bool) -> None:
        specs = [JobSpec.of(name, {"n": n}) for n, name in enumerate(queues)]
        done = "done" if completes else None
        if sealed:
            batch_id, sent = self.run(queue.send_batch(self.db, specs, on_complete_queue=done))
        else:
            batch_id = self.run(queue.create_batch(self.db, on_complete_queue=done))
            sent = self.run(queue.send_many(self.db, specs, batch_id=batch_id))
        self.batches[batch_id] = ModelBatch(completes, sealed=sealed,
                                            children=[s.id for s in sent])
        for name, s in zip(queues, sent, strict=True):
            self.jobs[s.id] = ModelJob(name, batch_id=batch_id)
        self.settle_batches()

    @precondition(lambda self: any(not b.sealed for b in self.batches.values()))
    @rule(data=st.data())
    def seal(self, data: st.DataObject) -> None:
        batch_id = data.draw(st.sampled_from(
            sorted(i for i, b in self.batches.items() if not b.sealed)))
        self.run(queue.seal_batch(self.db, batch_id))
        self.batches[batch_id].sealed = True
        self.settle_batches()

    @rule(worker=st.sampled_from(WORKERS),
          wanted=st.dictionaries(st.sampled_from(["a", "b", "dead", "done"]),
                                 st.integers(0, 3), min_size=1))
    def fetch(self, worker: str, wanted: dict[str, int]) -> None:
        got = self.run(queue.fetch(self.db, wanted, worker))
        by_queue = Counter(job.queue for job in got)
        for name, n in wanted.items():
            waiting = [i for i in self.ids(*WAITING) if self.jobs[i].queue == name]
            assert by_queue[name] == min(n, len(waiting)), (name, n, waiting)
        for job in got:
            model = self.jobs[job.id]
            assert model.state in WAITING and job.queue in wanted, (job, model)
            assert (job.attempt, job.worker_id) == (model.attempt + 1, worker)
        for job in got:  # nothing left behind was more urgent than what was handed out
            left = [i for i in self.ids(*WAITING) if self.jobs[i].queue == job.queue
                    and i not in {g.id for g in got}]
            assert all(self.jobs[i].priority <= job.priority for i in left)
        for job in got:
            model = self.jobs[job.id]
            model.state, model.attempt, model.worker = "active", model.attempt + 1, worker

    @precondition(lambda self: self.ids("active"))
    @rule(data=st.data(), right_worker=st.booleans())
    def complete(self, data: st.DataObject, right_worker: bool) -> None:
        job_id = data.draw(st.sampled_from(self.ids("active")))
        holder = self.jobs[job_id].worker
        assert holder is not None
        worker = holder if right_worker else next(w for w in WORKERS if w != holder)
        done = self.run(queue.complete_many(self.db, [(job_id, {"ok": 1})], worker_id=worker))
        assert done == ([job_id] if right_worker else [])
        if right_worker:
            self.end(job_id, "completed")
            self.settle_batches()

    @precondition(lambda self: self.ids("active"))
    @rule(data=st.data(), retry=st.booleans())
    def fail(self, data: st.DataObject, retry: bool) -> None:
        job_id = data.draw(st.sampled_from(self.ids("active")))
        job = self.jobs[job_id]
        results = self.run(queue.fail_many(
            self.db, [queue.Failure(job_id, "boom", retry=retry)], worker_id=job.worker))
        if retry and job.attempt <= POLICIES[job.queue]["retry_limit"]:
            assert [r.state for r in results] == ["retry"]
            job.state, job.worker = "retry", None
        else:
            assert [r.state for r in results] == ["failed"]
            self.end(job_id, "failed")
        self.learn_dead_letters(results)
        self.settle_batches()

    @precondition(lambda self: self.jobs)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.jobs)))
        cancelled = self.run(queue.cancel(self.db, [job_id]))
        if self.jobs[job_id].state in FINISHED:
            assert cancelled == []
            return
        assert cancelled == [job_id]
        self.end(job_id, "cancelled")
        self.settle_batches()

    @precondition(lambda self: self.ids("failed", "cancelled"))
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.ids("failed", "cancelled")))
        job = self.jobs[job_id]
        if job.singleton_key and self.key_taken(job.queue, job.singleton_key, but=job_id):
            with pytest.raises(InvalidState):
                self.run(queue.resume(self.db, [job_id]))
            return
        assert self.run(queue.resume(self.db, [job_id])) == [job_id]
        job.state, job.attempt, job.crash_count = "created", 0, 0

    @rule(worker=st.sampled_from(WORKERS))
    def hand_back(self, worker: str) -> None:
        held = self.held_by(worker)
        released = self.run(queue.release(self.db, held, worker))
        assert sorted(released) == held
        for job_id in held:
            self.back(job_id, crashed=False)

    @rule(worker=st.sampled_from(WORKERS))
    def worker_dies(self, worker: str) -> None:
        held = self.held_by(worker)
        taken = self.run(queue.take_back_jobs(self.db, [worker]))
        assert sorted(r.id for r in taken) == held
        for job_id in held:
            self.crash(job_id)
        self.learn_dead_letters([r.result for r in taken])
        self.settle_batches()

    @rule(worker=st.sampled_from(WORKERS))
    def worker_stalls(self, worker: str) -> None:
        held = self.held_by(worker)
        self.run(self.db.pool.execute(
            "UPDATE ms8jobs.jobs SET heartbeat_at = now() - interval '1 hour'"
            " WHERE worker_id = $1", worker))
        reclaimed = self.run(queue.reclaim_lost_jobs(self.db, stall_seconds=60))
        assert sorted(r.id for r in reclaimed) == held
        assert {r.reason for r in reclaimed} <= {"stalled"}
        for job_id in held:
            self.crash(job_id)
        self.learn_dead_letters([r.result for r in reclaimed])
        self.settle_batches()

    # ------------------------------------------------------------------ invariants

    @invariant()
    def every_job_is_where_and_as_the_model_says(self) -> None:
        rows = self.run(self.db.pool.fetch(
            "SELECT 'hot' AS t, id, queue, state::text, attempt, crash_count, worker_id"
            " FROM ms8jobs.jobs UNION ALL"
            " SELECT 'history', id, queue, state::text, attempt, crash_count, NULL"
            " FROM ms8jobs.history"))
        ids = [row["id"] for row in rows]
        assert len(ids) == len(set(ids)), "a job is in both tables"
        found = {row["id"]: (row["queue"], row["state"], row["attempt"], row["crash_count"],
                             row["worker_id"]) for row in rows}
        expected = {i: (j.queue, j.state, j.attempt, j.crash_count, j.worker)
                    for i, j in self.jobs.items()}
        assert found == expected
        for row in rows:
            assert (row["t"] == "history") == (row["state"] in FINISHED)

    @invariant()
    def counts_add_up(self) -> None:
        expected: dict[str, dict[str, int]] = {}
        for job in self.jobs.values():
            by_state = expected.setdefault(job.queue, {})
            by_state[job.state] = by_state.get(job.state, 0) + 1
        counts = self.run(queue.count_jobs(self.db))
        assert {q: {s: n for s, n in c.items() if n} for q, c in counts.items()
                if any(c.values())} == expected

    @invariant()
    def batch_totals_are_exact(self) -> None:
        for batch_id, model in self.batches.items():
            batch = self.run(queue.get_batch(self.db, batch_id))
            live = Counter(self.jobs[c].state for c in model.children)
            counts = model.frozen if model.frozen is not None else live
            assert batch.total == len(model.children)
            assert batch.totals == queue.BatchTotals.from_counts(dict(counts))
            assert (batch.finished_at is not None) == (model.frozen is not None)
            assert batch.completion_job_id == model.completion_job_id


async def test_random_sequences_keep_every_invariant(db: Database) -> None:
    # 40 sequences of 30 steps: about 10 s on an idle machine; a failure shrinks for longer.
    CoreMachine.db = db
    CoreMachine.loop = asyncio.get_running_loop()
    await asyncio.to_thread(run_state_machine_as_test, CoreMachine, settings=settings(
        max_examples=40, stateful_step_count=30, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
