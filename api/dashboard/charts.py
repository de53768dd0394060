"""The dashboard's charts, built from the very bodies the API serves as JSON (``api.stats``,
``api.analytics.progress``): each chart is its SVG, a legend that gives its numbers
directly, a table of every non-empty bucket, and the link to its JSON.

    overview      throughput and failures per queue (a chart per queue that finished
                  jobs), jobs waiting and the oldest one's age per queue, busy slots
    nightly run   the run's jobs ended over time, breaker openings per source
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from api.dashboard import svg
from shared.queue import FINISHED_STATES


@dataclass(frozen=True)
class LegendItem:
    name: str
    value: str
    fill: str | None = None        # a bar's fill (CSS .fill-<name>)
    line: Markup | None = None     # a line's dash and marker


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    svg: Markup
    headline: str
    json_url: str
    legend: Sequence[LegendItem] = ()
    columns: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = field(default_factory=list)


def _n(value: int | float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


def api_url(path: str, params: dict[str, Any]) -> str:
    query = {k: v for k, v in params.items() if v is not None}
    return path + (f"?{urlencode(query)}" if query else "")


def _range_words(body: dict[str, Any]) -> str:
    return f"{_when(body['since'])} to {_when(body['until'])} UTC"


def throughput(body: dict[str, Any], json_url: str) -> list[Chart]:
    """A chart per queue: its jobs ended per bucket, completed / failed / cancelled."""
    charts = []
    for q in body["queues"]:
        totals = q["totals"]
        series = [svg.Series(state, q[state], state) for state in FINISHED_STATES]
        words = ", ".join(f"{_n(totals[s])} {s}" for s in FINISHED_STATES)
        title = f"{q['queue']}: jobs ended"
        chart_id = f"tp-{q['queue']}"
        rows = [[_when(at), *(_n(q[s][i]) for s in FINISHED_STATES),
                 svg.seconds_text(q["run_p50_seconds"][i]),
                 svg.seconds_text(q["run_p95_seconds"][i]),
                 svg.seconds_text(q["wait_p95_seconds"][i])]
                for i, at in enumerate(body["at"]) if any(q[s][i] for s in FINISHED_STATES)]
        charts.append(Chart(
            id=chart_id, title=title,
            svg=svg.bars(chart_id, body["at"], body["step_seconds"], series, title=title,
                         summary=f"{words}, {_range_words(body)}"),
            headline=(f"run p50 {svg.seconds_text(totals['run_p50_seconds'])} · p95 "
                      f"{svg.seconds_text(totals['run_p95_seconds'])} · wait p95 "
                      f"{svg.seconds_text(totals['wait_p95_seconds'])}"),
            json_url=json_url,
            legend=[LegendItem(s, _n(totals[s]), fill=s) for s in FINISHED_STATES],
            columns=["bucket (UTC)", *FINISHED_STATES, "run p50", "run p95", "wait p95"],
            rows=rows))
    return charts


def _peak(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _last(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return known[-1] if known else None


def _lines_chart(chart_id: str, title: str, body: dict[str, Any], named: list[tuple[str, Any]],
                 json_url: str, unit: str, empty: str) -> Chart:
    fmt = svg.seconds_text if unit == "seconds" else _n
    series = [svg.Series(name, values) for name, values in named]
    peaks = [f"{name} {fmt(_peak(values))}" for name, values in named]
    headline = ("peak " + ", ".join(peaks)) if named else empty
    legend = [LegendItem(name, f"now {fmt(_last(values))} · peak {fmt(_peak(values))}",
                         line=svg.marker_swatch(i))
              for i, (name, values) in enumerate(named)]
    rows = [[_when(at), *(fmt(values[i]) for _name, values in named)]
            for i, at in enumerate(body["at"])
            if any(values[i] for _name, values in named)]
    return Chart(
        id=chart_id, title=title,
        svg=svg.lines(chart_id, body["at"], body["step_seconds"], series, title=title,
                      summary=f"{headline}, {_range_words(body)}", unit=unit),
        headline=headline, json_url=json_url, legend=legend,
        columns=["bucket (UTC)", *(name for name, _ in named)], rows=rows)


def queue_depth(body: dict[str, Any], json_url: str) -> list[Chart]:
    """Jobs waiting per queue and the oldest due job's age: the queues that had any."""
    busy = [q for q in body["queues"] if any(q["waiting"][i] for i in range(len(body["at"])))]
    waiting = _lines_chart(
        "depth-waiting", "Jobs waiting", body, [(q["queue"], q["waiting"]) for q in busy],
        json_url, "count", "no job waited")
    oldest = _lines_chart(
        "depth-oldest", "Oldest waiting job", body,
        [(q["queue"], q["oldest_waiting_seconds"]) for q in busy], json_url, "seconds",
        "no job waited")
    return [waiting, oldest]


def fleet(body: dict[str, Any], json_url: str) -> Chart:
    """Busy slots (hatched bars) under the fleet's slots (a line)."""
    title = "Busy slots of the fleet"
    busy, slots = body["busy"], body["slots"]
    workers = _peak(body["workers"])
    headline = (f"peak {_n(_peak(busy))} busy of {_n(_peak(slots))} slots "
                f"({_n(workers)} worker{'' if workers == 1 else 's'})")
    rows = [[_when(at), _n(body["workers"][i]), _n(slots[i]), _n(busy[i])]
            for i, at in enumerate(body["at"]) if slots[i] is not None]
    return Chart(
        id="fleet", title=title,
        svg=svg.lines("fleet", body["at"], body["step_seconds"], [svg.Series("slots", slots)],
                      title=title, summary=f"{headline}, {_range_words(body)}",
                      shade=svg.Series("busy", busy, "busy")),
        headline=headline, json_url=json_url,
        legend=[LegendItem("busy", f"peak {_n(_peak(busy))}", fill="busy"),
                LegendItem("slots", f"peak {_n(_peak(slots))}", line=svg.marker_swatch(0))],
        columns=["bucket (UTC)", "workers", "slots", "busy"], rows=rows)


def night_throughput(progress: dict[str, Any], json_url: str) -> Chart:
    timeline = progress["timeline"]
    title = "Jobs ended during the run"
    series = [svg.Series(state, timeline[state], state) for state in FINISHED_STATES]
    sums = {state: sum(timeline[state]) for state in FINISHED_STATES}
    words = ", ".join(f"{_n(sums[s])} {s}" for s in FINISHED_STATES)
    rows = [[_when(at), *(_n(timeline[s][i]) for s in FINISHED_STATES)]
            for i, at in enumerate(timeline["at"])
            if any(timeline[s][i] for s in FINISHED_STATES)]
    return Chart(
        id="night-throughput", title=title,
        svg=svg.bars("night-throughput", timeline["at"], timeline["step_seconds"], series,
                     title=title, summary=f"{words}, {_range_words(timeline)}"),
        headline=f"per {svg.seconds_text(timeline['step_seconds'])}: {words}",
        json_url=json_url,
        legend=[LegendItem(s, _n(sums[s]), fill=s) for s in FINISHED_STATES],
        columns=["bucket (UTC)", *FINISHED_STATES], rows=rows)


def breaker_openings(progress: dict[str, Any], json_url: str) -> Chart:
    openings = progress["breaker_openings"]
    by_source: dict[str, list[tuple[datetime, bool]]] = {}
    for o in openings:
        by_source.setdefault(o["source"], []).append((o["opened_at"], not o["after_probe"]))
    rows = [svg.Row(f"{source} ×{len(events)}", events)
            for source, events in sorted(by_source.items(), key=lambda kv: -len(kv[1]))]
    timeline = progress["timeline"]
    title = "Breaker openings"
    headline = (", ".join(f"{source} ×{len(events)}" for source, events in sorted(
        by_source.items(), key=lambda kv: -len(kv[1]))) or "no breaker opened")
    return Chart(
        id="night-breakers", title=title,
        svg=svg.timeline("night-breakers", progress["started_at"],
                         progress["finished_at"] or timeline["until"], rows, title=title,
                         summary=headline),
        headline=headline, json_url=json_url,
        columns=["opened (UTC)", "source", "worker", "why"],
        rows=[[o["opened_at"].strftime("%Y-%m-%d %H:%M:%S"), o["source"], o["worker_id"],
               "still down after a cool-down" if o["after_probe"] else "failures in a row"]
              for o in openings])
