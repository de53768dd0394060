"""The dashboard's server-drawn charts, without a database: well-formed SVG whose every
bucket and series can be told apart without colour, and charts whose legends and tables
give the same numbers as the JSON bodies they are drawn from."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from api import stats
from api.dashboard import charts, svg
from shared.queue import Rollup, Timing, Window

NS = {"s": "http://www.w3.org/2000/svg"}
T = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def buckets(n: int, step: int = 60) -> list[datetime]:
    return [T + timedelta(seconds=step * i) for i in range(n)]


def test_stacked_bars_carry_a_pattern_per_outcome_and_their_numbers() -> None:
    series = [svg.Series("completed", [5, 0, 7], "completed"),
              svg.Series("failed", [1, 0, 0], "failed")]
    root = parse(svg.bars("c1", buckets(3), 60, series, title="q: jobs ended",
                          summary="12 completed, 1 failed"))
    assert root.find("s:title", NS).text == "q: jobs ended"
    assert root.get("role") == "img"
    patterns = {p.get("id") for p in root.iter("{http://www.w3.org/2000/svg}pattern")}
    assert patterns == {"c1-failed"}  # solid fills need none
    bars = root.findall("s:g[@class='bar']", NS)
    assert [b.find("s:title", NS).text for b in bars] == [
        "02:00 UTC: 5 completed, 1 failed", "02:02 UTC: 7 completed, 0 failed"]
    fills = [r.get("fill") for r in bars[0].findall("s:rect", NS)]
    assert fills == ["#15803d", "url(#c1-failed)"]


def test_text_is_escaped() -> None:
    markup = svg.bars("c2", buckets(1), 60, [svg.Series("<b>&", [1], "cancelled")],
                      title="<script>", summary="a & b")
    root = parse(markup)
    assert root.find("s:title", NS).text == "<script>"
    assert "<script>" not in str(markup)


def test_lines_break_where_no_sample_was_taken_and_mark_their_ends() -> None:
    series = [svg.Series("a", [1, 2, None, 4]), svg.Series("b", [None, None, 3, None])]
    root = parse(svg.lines("c3", buckets(4), 60, series, title="waiting", summary="s"))
    lines = root.findall("s:polyline", NS)
    assert [line.find("s:title", NS).text for line in lines] == ["a", "a", "b"]
    assert lines[0].get("stroke-dasharray") is None and lines[2].get("stroke-dasharray")
    # a: its last point and its peak are the same, one marker; b: one point, one marker
    assert len(root.findall("s:circle", NS)) == 1 and len(root.findall("s:rect", NS)) == 1


def test_a_shaded_series_is_drawn_as_hatched_bars() -> None:
    root = parse(svg.lines("c4", buckets(2), 60, [svg.Series("slots", [10, 10])],
                           title="fleet", summary="s", shade=svg.Series("busy", [4, None],
                                                                        "busy")))
    [busy] = root.findall("s:rect[@class='seg seg-busy']", NS)
    assert busy.get("fill") == "url(#c4-busy)"


def test_a_timeline_draws_each_event_on_its_row() -> None:
    rows = [svg.Row("assessment ×3", [(T, True), (T + timedelta(seconds=30), False),
                                      (T + timedelta(seconds=60), False)])]
    root = parse(svg.timeline("c5", T, T + timedelta(minutes=2), rows, title="openings",
                              summary="assessment ×3"))
    assert [t.text for t in root.findall("s:text", NS)][0] == "assessment ×3"
    assert len(root.findall("s:line[@class='event-strong']", NS)) == 1
    assert len(root.findall("s:line[@class='event']", NS)) == 2


@pytest.mark.parametrize("value, ceiling", [(0, 1), (1, 1), (3, 5), (12, 20), (21, 25),
                                            (999, 1000), (1001, 2000), (0.3, 0.5)])
def test_nice_ceilings(value: float, ceiling: float) -> None:
    assert svg.nice_ceiling(value) == pytest.approx(ceiling)


def test_numbers_for_people() -> None:
    assert [svg.count_text(v) for v in (0, 950, 1200, 30000, 1_500_000, 2.5)] == [
        "0", "950", "1.2k", "30k", "1.5M", "2.5"]
    assert [svg.seconds_text(v) for v in (None, 0.04, 2.5, 3.0, 252.0, 5400.0)] == [
        "—", "40 ms", "2.5 s", "3 s", "4.2 min", "1.5 h"]


def timing(n: int, seconds: float) -> Timing:
    counts = [0] * 15
    counts[sum(1 for b in (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0) if seconds >= b)] = n
    return Timing(tuple(counts), n * seconds, seconds)


def test_a_queue_chart_says_what_its_json_says() -> None:
    window = Window.covering(T, T + timedelta(minutes=3))
    found = [Rollup(T, "collect-analytics", "completed", 90, timing(90, 0.04), timing(90, 2)),
             Rollup(T, "collect-analytics", "failed", 10, timing(10, 0.3), timing(10, 2)),
             Rollup(T + timedelta(minutes=2), "collect-analytics", "completed", 5,
                    timing(5, 0.04), timing(5, 0.1))]
    body = stats.throughput_body(window, found)
    [q] = body["queues"]
    assert (q["completed"], q["failed"], q["cancelled"]) == ([90, 0, 5], [10, 0, 0], [0, 0, 0])
    assert q["totals"]["completed"] == 95 and q["totals"]["failed"] == 10
    assert q["run_p50_seconds"][1] is None and q["run_p50_seconds"][0] is not None
    [chart] = charts.throughput(body, "/stats/throughput?hours=24")
    assert [(i.name, i.value) for i in chart.legend] == [
        ("completed", "95"), ("failed", "10"), ("cancelled", "0")]
    assert [row[:4] for row in chart.rows] == [
        ["2026-03-01 02:00", "90", "10", "0"], ["2026-03-01 02:02", "5", "0", "0"]]
    assert "95 completed, 10 failed, 0 cancelled" in str(chart.svg)
