"""The audit every chaos scenario ends with: every job and every snapshot accounted for.

``settled`` checks that nothing is left waiting or running; ``night`` checks one nightly
run from the database alone, whatever happened to the processes meanwhile:

- every active user-role has exactly one collect-analytics job in history for the night
  (none lost, none twice) and all of them belong to the night's batch;
- the batch is sealed and finished, its frozen totals equal the history's counts, and
  its total equals the jobs sent;
- one summary: the night's run is finished, its totals equal the history's, and one
  daily-batch-done job ran, once;
- snapshots of the night = complete + partial of the summary, status by status.

Problems are gathered and reported together, so that a failed audit says everything it
found. The returned ``Audit`` holds the counts a scenario records.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date

import orjson

from analytics import runs
from analytics.fanout import COLLECT_QUEUE, DAILY_QUEUE, DONE_QUEUE
from shared import queue
from shared.db import Database


@dataclass(frozen=True, slots=True)
class Audit:
    sent: int          # jobs sent
    completed: int     # ended completed (for a night: complete + partial snapshots)
    partial: int       # of those, partial snapshots
    failed: int
    cancelled: int
    lost: int          # expected jobs with no end in history
    duplicates: int    # ends in history beyond one per expected job
    re_runs: int       # runs beyond the first: crashes taken back plus retries spent
    crashes: int       # runs cut short by a dead or stalled worker (crash_count)

    def numbers(self) -> dict[str, int]:
        return asdict(self)


class AuditFailed(AssertionError):
    pass


def _tables(db: Database) -> tuple[str, str]:
    return f'"{db.schema}"', f'"{db.schema}_analytics"'


async def settled(db: Database) -> None:
    """Nothing waits or runs any more, in any queue."""
    jobs, _ = _tables(db)
    rows = await db.pool.fetch(
        f"SELECT queue, state::text AS state, count(*) AS n FROM {jobs}.jobs GROUP BY 1, 2")
    if rows:
        raise AuditFailed("jobs still waiting or active: " + ", ".join(
            f"{r['queue']} {r['state']} ×{r['n']}" for r in rows))


async def ends(db: Database, queue_name: str) -> list[dict[str, object]]:
    """Every job of the queue that ended (its history rows)."""
    jobs, _ = _tables(db)
    rows = await db.pool.fetch(
        f"SELECT id, data, state::text AS state, attempt, crash_count, batch_id"
        f" FROM {jobs}.history WHERE queue = $1 ORDER BY id", queue_name)
    return [dict(r) for r in rows]


def count_runs(rows: list[dict[str, object]]) -> tuple[int, int]:
    """(re-runs, crashes) of these ended jobs: runs beyond each job's first."""
    crashes = sum(int(r["crash_count"]) for r in rows)  # type: ignore[call-overload]
    retries = sum(max(int(r["attempt"]) - 1, 0) for r in rows)  # type: ignore[call-overload]
    return crashes + retries, crashes


async def night(db: Database, night_: date) -> Audit:
    """Audit the nightly run of ``night_`` (see the module's docstring); raises
    ``AuditFailed`` naming every discrepancy."""
    problems: list[str] = []
    jobs, analytics = _tables(db)
    await settled(db)
    run = await runs.get(db, night_)
    if run.finished_at is None or run.batch_id is None:
        raise AuditFailed(f"night {night_}: no summary (state {run.state})")
    expected = {r["id"] for r in await db.pool.fetch(
        f"SELECT id FROM {analytics}.user_roles WHERE active")}
    day = night_.isoformat()
    collected = [r for r in await ends(db, COLLECT_QUEUE)
                 if _data(r).get("day") == day]
    per_user_role = Counter(int(_data(r)["user_role_id"]) for r in collected)
    lost = expected - set(per_user_role)
    strangers = set(per_user_role) - expected
    duplicates = sum(n - 1 for n in per_user_role.values())
    if lost:
        problems.append(f"{len(lost)} user-roles without a collect job in history, "
                        f"e.g. {sorted(lost)[:5]}")
    if strangers:
        problems.append(f"collect jobs for user-roles that are not active: "
                        f"{sorted(strangers)[:5]}")
    if duplicates:
        twice = [u for u, n in per_user_role.items() if n > 1]
        problems.append(f"{duplicates} duplicate collect jobs, e.g. user-roles {twice[:5]}")
    outside = [r["id"] for r in collected if r["batch_id"] != run.batch_id]
    if outside:
        problems.append(f"{len(outside)} collect jobs outside the night's batch "
                        f"{run.batch_id}: {outside[:5]}")
    by_state = Counter(str(r["state"]) for r in collected)

    batch = await db.pool.fetchrow(
        f"SELECT total, sealed, finished_at, totals::text AS totals, completion_job_id"
        f" FROM {jobs}.batches WHERE id = $1", run.batch_id)
    frozen = queue.BatchTotals.from_counts(_json_counts(batch["totals"]))
    history_totals = queue.BatchTotals.from_counts(dict(by_state))
    if not (batch["sealed"] and batch["finished_at"] is not None):
        problems.append(f"batch {run.batch_id} not sealed and finished")
    if frozen != history_totals:
        problems.append(f"batch totals {frozen} differ from the history's {history_totals}")
    if batch["total"] != len(collected) or run.sent != len(collected):
        problems.append(f"batch total {batch['total']} and jobs sent {run.sent} differ from "
                        f"the {len(collected)} jobs in history")

    dones = [r for r in await ends(db, DONE_QUEUE)
             if _data(r).get("batch_id") == run.batch_id]
    if [(r["state"], r["id"]) for r in dones] != [("completed", batch["completion_job_id"])]:
        problems.append(f"the night's completion job ran {len(dones)} times "
                        f"({[r['state'] for r in dones]}), expected once")
    summary = (run.total, (run.complete or 0) + (run.partial or 0), run.failed, run.cancelled)
    counted = (len(collected), by_state["completed"], by_state["failed"],
               by_state["cancelled"])
    if summary != counted:
        problems.append(f"summary (total, completed, failed, cancelled) {summary} differs "
                        f"from the history's {counted}")

    snapshots = Counter({r["status"]: r["n"] for r in await db.pool.fetch(
        f"SELECT status, count(*) AS n FROM {analytics}.snapshots WHERE day = $1"
        f" GROUP BY status", night_)})
    written = (snapshots["complete"], snapshots["partial"])
    if written != (run.complete, run.partial):
        problems.append(f"snapshots (complete, partial) {written} differ from the "
                        f"summary's {run.complete, run.partial}")

    fan_outs = [r for r in await ends(db, DAILY_QUEUE) if r["state"] != "completed"]
    if fan_outs:
        problems.append(f"daily-batch jobs that did not complete: {fan_outs}")
    if problems:
        raise AuditFailed(f"night {night_}:\n- " + "\n- ".join(problems))
    re_runs, crashes = count_runs(collected)
    return Audit(sent=run.sent, completed=by_state["completed"], partial=run.partial or 0,
                 failed=by_state["failed"], cancelled=by_state["cancelled"],
                 lost=len(lost), duplicates=duplicates, re_runs=re_runs, crashes=crashes)


def _data(row: dict[str, object]) -> dict[str, object]:
    value = row["data"]
    return orjson.loads(value) if isinstance(value, str | bytes) else dict(value)  # type: ignore[arg-type]


def _json_counts(text: str | None) -> dict[str, int]:
    return {str(k): int(v) for k, v in (orjson.loads(text) if text else {}).items()}
