"""What a run measured: one row per metric, one value per system, and how to show it.

A value is the median of its samples (all samples are kept for the JSON output). The
ratio is always ms8-jobs / peer, whatever the direction of the metric: above 1 is
better for throughputs, below 1 is better for latencies, costs and memory. A target
either bounds the ms8-jobs value or bounds its ratio to a peer; a metric a system did
not run (a peer without that scenario, a skipped scenario) has no value and shows "-".
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

MS8 = "ms8-jobs"
PGQUEUER = "PGQueuer"
PROCRASTINATE = "Procrastinate"
PGBOSS = "pg-boss"
BULLMQ = "BullMQ"
PEERS = (PGQUEUER, PROCRASTINATE, PGBOSS, BULLMQ)
#: A target's ``peer`` meaning whichever peer did best on that metric in the run.
BEST_PEER = "the best peer"

Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class Target:
    """A goal for the ms8-jobs value of a metric: ``value >= bound`` (or ``<=``), where the
    value is divided first by a peer's value of the same metric (``peer``), or by the
    ms8-jobs value of another metric (``versus``), when one is named."""

    text: str
    bound: float
    direction: Direction
    peer: str | None = None
    versus: str | None = None

    def met(self, metric: Metric, report: Report) -> bool | None:
        ours = metric.value(MS8)
        if ours is None:
            return None
        base: float | None = None
        if self.peer == BEST_PEER:
            base = metric.best_peer()
        elif self.peer is not None:
            base = metric.value(self.peer)
        elif self.versus is not None:
            other = report.metrics.get(self.versus)
            base = None if other is None else other.value(MS8)
        if (self.peer or self.versus) is not None:
            if not base:
                return None
            ours = ours / base
        return ours >= self.bound if self.direction == "higher" else ours <= self.bound


@dataclass
class Metric:
    """One row of the table."""

    key: str
    label: str
    unit: str
    better: Direction
    digits: int = 0
    target: Target | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, system: str, value: float, note: str | None = None) -> None:
        self.samples.setdefault(system, []).append(float(value))
        if note:
            self.notes[system] = note

    def value(self, system: str) -> float | None:
        samples = self.samples.get(system)
        return statistics.median(samples) if samples else None

    def best_peer(self) -> float | None:
        """The best peer value of the metric (highest or lowest, as it is better)."""
        values = [v for p in PEERS if (v := self.value(p)) is not None]
        if not values:
            return None
        return max(values) if self.better == "higher" else min(values)

    def ratio(self, peer: str) -> float | None:
        ours, theirs = self.value(MS8), self.value(peer)
        if ours is None or not theirs:
            return None
        return ours / theirs

    def shown(self, system: str) -> str:
        value = self.value(system)
        if value is None:
            return "-"
        return f"{value:,.{self.digits}f}"

    def as_json(self, report: Report) -> dict[str, Any]:
        return {
            "label": self.label, "unit": self.unit, "better": self.better,
            "values": {s: self.value(s) for s in self.samples},
            "samples": self.samples,
            "ratios": {p: self.ratio(p) for p in PEERS if self.ratio(p) is not None},
            "notes": self.notes,
            "target": None if self.target is None else {
                "text": self.target.text, "met": self.target.met(self, report)},
        }


class Report:
    """The metrics of a run, in the order they were first recorded."""

    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}
        self.context: dict[str, Any] = {}
        self.sections: dict[str, str] = {}  # e.g. "explain" -> plans, "profile" -> paths
        self.data: dict[str, Any] = {}  # a scenario's own results (scale, soak), for JSON

    def metric(self, key: str, label: str, unit: str, better: Direction, *,
               digits: int = 0, target: Target | None = None) -> Metric:
        if key not in self.metrics:
            self.metrics[key] = Metric(key, label, unit, better, digits, target)
        return self.metrics[key]

    def peers(self) -> list[str]:
        """The peers measured in this run (a column each), PGQueuer and Procrastinate
        always: their absence is news."""
        ran = {system for m in self.metrics.values() for system in m.samples}
        return [p for p in PEERS if p in ran or p in (PGQUEUER, PROCRASTINATE)]

    def table(self) -> str:
        peers = self.peers()
        header = ["metric", MS8]
        for peer in peers:
            header += [peer, "ratio"]
        rows = [header + ["target", "met"]]
        for m in self.metrics.values():
            met = None if m.target is None else m.target.met(m, self)
            row = [f"{m.label} ({m.unit})", m.shown(MS8)]
            for peer in peers:
                row += [m.shown(peer), _ratio(m.ratio(peer))]
            rows.append(row + [
                "" if m.target is None else m.target.text,
                {None: "", True: "yes", False: "NO"}[met],
            ])
        return render(rows)

    def notes(self) -> str:
        lines = []
        for m in self.metrics.values():
            for system, note in m.notes.items():
                lines.append(f"- {m.label}, {system}: {note}")
        return "\n".join(lines)

    def write_json(self, path: Path) -> None:
        data = {
            "context": self.context,
            "metrics": {key: m.as_json(self) for key, m in self.metrics.items()},
            "sections": self.sections,
            **self.data,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x" if value < 100 else f"{value:,.0f}x"


def render(rows: list[list[str]], text_columns: int = 3) -> str:
    """A Markdown table (readable as plain text too), numbers right-aligned: every column
    but the first and the last ``text_columns - 1`` (the metrics' target and "met")."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def numeric(column: int) -> bool:  # every column but the label, target and "met"
        return 0 < column < len(widths) - (text_columns - 1)

    lines = []
    for n, row in enumerate(rows):
        cells = [c.rjust(w) if numeric(i) and n else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append("|" + "|".join(
                "-" * (w + 1) + (":" if numeric(i) else "-")
                for i, w in enumerate(widths)) + "|")
    return "\n".join(lines)
