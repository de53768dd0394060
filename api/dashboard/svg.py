"""Charts drawn on the server as inline SVG: no script, no build step, nothing fetched.

Three kinds: stacked ``bars`` (jobs per bucket by outcome), ``lines`` (a value per bucket
and series, with gaps where there is none) and a ``timeline`` of events per row (breaker
openings per source). Each is readable without colour: bar segments carry a pattern
(solid, hatched, dotted), lines a dash pattern and a marker shape at their last and
highest points, every bucket a ``<title>`` with its numbers, and the chart a text
summary for screen readers. The legend and the numbers table live in the page
(``templates/_charts.html``), beside the SVG.

The SVG scales to its container (``viewBox``, CSS width 100%); the drawing is sized for
a card 300 to 420 pixels wide, a phone's width or a third of a desktop's, so its text
stays between 10 and 14 pixels. Pure: values in, markup out, every text escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

WIDTH, HEIGHT = 360, 150
LEFT, RIGHT, TOP, BOTTOM = 38, 8, 10, 22
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
FONT = 11

# name → (pattern, ink, paper): the fill of a bar segment, echoed by the legend's CSS
# (app.css .swatch-<name>).
FILLS = {
    "completed": ("solid", "#15803d", "#15803d"),
    "partial": ("backhatch", "#b45309", "#fde68a"),
    "failed": ("hatch", "#b91c1c", "#fecaca"),
    "cancelled": ("dots", "#4b5563", "#e5e7eb"),
    "busy": ("hatch", "#1d4ed8", "#bfdbfe"),
}
# Lines: a dash pattern and a marker shape per series, in order; the ink repeats.
DASHES = ("", "6 3", "1.5 2.5", "8 3 2 3")
MARKERS = ("circle", "square", "triangle", "diamond")
INKS = ("#1d4ed8", "#b45309", "#7c3aed", "#0f766e", "#be123c", "#374151")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]
    fill: str = "completed"  # bars: a key of FILLS


@dataclass(frozen=True, slots=True)
class LineStyle:
    dash: str
    marker: str
    ink: str


def line_style(i: int) -> LineStyle:
    return LineStyle(DASHES[i % len(DASHES)], MARKERS[i % len(MARKERS)], INKS[i % len(INKS)])


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if value <= m * power * (1 + 1e-9):
            return m * power
    return 10 * power


def count_text(value: float) -> str:
    """A count for an axis: 950, 1.2k, 30k, 1.5M."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            text = f"{value / limit:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    return f"{value:g}" if value != int(value) else str(int(value))


def seconds_text(value: float | None) -> str:
    """A duration for people: 40 ms, 2.5 s, 4.2 min, 1.5 h."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s".replace(".0 s", " s")
    if value < 3600:
        return f"{value / 60:.1f} min".replace(".0 min", " min")
    return f"{value / 3600:.1f} h".replace(".0 h", " h")


def when_text(at: datetime, span: timedelta) -> str:
    return at.strftime("%H:%M") if span <= timedelta(hours=36) else at.strftime("%d %b")


def _open(chart_id: str, title: str, summary: str, height: int = HEIGHT) -> list[str]:
    return [f'<svg class="chart-svg" viewBox="0 0 {WIDTH} {height}" role="img" '
            f'aria-labelledby="{chart_id}-t {chart_id}-d" font-size="{FONT}" '
            f'xmlns="http://www.w3.org/2000/svg">',
            f'<title id="{chart_id}-t">{escape(title)}</title>',
            f'<desc id="{chart_id}-d">{escape(summary)}</desc>']


def _patterns(chart_id: str, fills: Sequence[str]) -> str:
    parts = ["<defs>"]
    for name in dict.fromkeys(fills):
        kind, ink, paper = FILLS[name]
        pid = f"{chart_id}-{name}"
        if kind in ("hatch", "backhatch"):
            angle = 45 if kind == "hatch" else -45
            parts.append(
                f'<pattern id="{pid}" width="4" height="4" patternUnits="userSpaceOnUse" '
                f'patternTransform="rotate({angle})"><rect width="4" height="4" '
                f'fill="{paper}"/><rect width="2" height="4" fill="{ink}"/></pattern>')
        elif kind == "dots":
            parts.append(
                f'<pattern id="{pid}" width="4" height="4" patternUnits="userSpaceOnUse">'
                f'<rect width="4" height="4" fill="{paper}"/>'
                f'<circle cx="2" cy="2" r="1.1" fill="{ink}"/></pattern>')
    parts.append("</defs>")
    return "".join(parts)


def _fill(chart_id: str, name: str) -> str:
    kind, ink, _paper = FILLS[name]
    return ink if kind == "solid" else f"url(#{chart_id}-{name})"


def _y_axis(top: float, text: str = "count") -> list[str]:
    parts = []
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + PLOT_H * (1 - fraction)
        value = top * fraction
        label = seconds_text(value) if text == "seconds" else count_text(value)
        if fraction == 0 and text == "seconds":
            label = "0"
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}" stroke="#d0d5dd" stroke-width="0.6"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 3.5:.1f}" text-anchor="end" '
                     f'fill="#475467">{escape(label)}</text>')
    return parts


def _x_axis(at: Sequence[datetime], step: int) -> list[str]:
    n = len(at)
    if not n:
        return []
    span = timedelta(seconds=step * n)
    ticks = sorted({round(i * n / 4) for i in range(4)} - {n})
    parts = []
    for i in ticks:
        x = LEFT + PLOT_W * i / n
        anchor = "start" if i == 0 else "middle"
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + PLOT_H}" '
                     f'y2="{TOP + PLOT_H + 3}" stroke="#98a2b3"/>')
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}" '
                     f'fill="#475467">{escape(when_text(at[i], span))}</text>')
    return parts


def bars(chart_id: str, at: Sequence[datetime], step: int, series: Sequence[Series], *,
         title: str, summary: str) -> Markup:
    """Stacked bars: one per bucket, a segment per series (in order, from the bottom)."""
    n = len(at)
    stacks = [sum(s.values[i] or 0 for s in series) for i in range(n)]
    top = nice_ceiling(max(stacks, default=0))
    parts = _open(chart_id, title, summary)
    parts.append(_patterns(chart_id, [s.fill for s in series]))
    parts += _y_axis(top)
    width = PLOT_W / max(n, 1)
    span = timedelta(seconds=step * n)
    for i in range(n):
        if not stacks[i]:
            continue
        x = LEFT + width * i + width * 0.08
        base: float = TOP + PLOT_H
        words = ", ".join(f"{count_text(s.values[i] or 0)} {s.name}" for s in series)
        parts.append(f'<g class="bar"><title>{escape(when_text(at[i], span))} UTC: '
                     f'{escape(words)}</title>')
        for s in series:
            value = s.values[i] or 0
            if not value:
                continue
            h = max(PLOT_H * value / top, 1.5)
            base -= h
            parts.append(f'<rect class="seg seg-{s.fill}" x="{x:.2f}" y="{base:.2f}" '
                         f'width="{max(width * 0.84, 0.8):.2f}" height="{h:.2f}" '
                         f'fill="{_fill(chart_id, s.fill)}" stroke="#1f2937" '
                         f'stroke-width="{0.3 if width > 3 else 0}"/>')
        parts.append("</g>")
    parts += _x_axis(at, step)
    parts.append("</svg>")
    return Markup("".join(parts))


def _marker(shape: str, x: float, y: float, ink: str) -> str:
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{ink}"/>'
    if shape == "square":
        return f'<rect x="{x - 2.8:.1f}" y="{y - 2.8:.1f}" width="5.6" height="5.6" fill="{ink}"/>'
    if shape == "triangle":
        return (f'<path d="M{x:.1f} {y - 3.6:.1f} L{x + 3.4:.1f} {y + 2.4:.1f} '
                f'L{x - 3.4:.1f} {y + 2.4:.1f} Z" fill="{ink}"/>')
    return (f'<path d="M{x:.1f} {y - 3.6:.1f} L{x + 3.6:.1f} {y:.1f} L{x:.1f} {y + 3.6:.1f} '
            f'L{x - 3.6:.1f} {y:.1f} Z" fill="{ink}"/>')


def marker_swatch(i: int) -> Markup:
    """The legend's picture of line ``i``: its dash and its marker."""
    style = line_style(i)
    dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
    return Markup(f'<svg class="swatch-line" width="30" height="12" viewBox="0 0 30 12" '
                  f'aria-hidden="true"><line x1="1" y1="6" x2="29" y2="6" stroke="{style.ink}" '
                  f'stroke-width="2"{dash}/>{_marker(style.marker, 15, 6, style.ink)}</svg>')


def lines(chart_id: str, at: Sequence[datetime], step: int, series: Sequence[Series], *,
          title: str, summary: str, unit: str = "count", shade: Series | None = None
          ) -> Markup:
    """A line per series through the bucket centres, broken where a value is missing;
    ``shade``, if given, is drawn first as hatched bars (the fleet's busy slots)."""
    n = len(at)
    values = [v for s in [*series, *([shade] if shade else [])] for v in s.values
              if v is not None]
    top = nice_ceiling(max(values, default=0))
    parts = _open(chart_id, title, summary)
    parts.append(_patterns(chart_id, [shade.fill] if shade else []))
    parts += _y_axis(top, "seconds" if unit == "seconds" else "count")
    width = PLOT_W / max(n, 1)
    span = timedelta(seconds=step * n)

    def y_of(value: float) -> float:
        return TOP + PLOT_H * (1 - value / top)

    if shade is not None:
        for i, value in enumerate(shade.values):
            if value:
                parts.append(
                    f'<rect class="seg seg-{shade.fill}" x="{LEFT + width * i:.2f}" '
                    f'y="{y_of(value):.2f}" width="{max(width, 0.8):.2f}" '
                    f'height="{TOP + PLOT_H - y_of(value):.2f}" '
                    f'fill="{_fill(chart_id, shade.fill)}"><title>'
                    f'{escape(when_text(at[i], span))} UTC: {escape(count_text(value))} '
                    f'{escape(shade.name)}</title></rect>')
    for k, s in enumerate(series):
        style = line_style(k)
        dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
        runs: list[list[tuple[float, float]]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            runs[-1].append((LEFT + width * (i + 0.5), y_of(value)))
        for points in runs:
            if len(points) == 1:
                x, y = points[0]
                points = [(x - width / 2, y), (x + width / 2, y)]
            if points:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
                parts.append(f'<polyline class="line" points="{path}" fill="none" '
                             f'stroke="{style.ink}" stroke-width="1.8"{dash}>'
                             f'<title>{escape(s.name)}</title></polyline>')
        known = [(i, v) for i, v in enumerate(s.values) if v is not None]
        if known:
            peak = max(known, key=lambda iv: iv[1])
            for i, value in {known[-1], peak}:
                parts.append(_marker(style.marker, LEFT + width * (i + 0.5), y_of(value),
                                     style.ink))
    parts += _x_axis(at, step)
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True, slots=True)
class Row:
    """A row of a time line: its label and the moments of its events (``strong`` ones
    drawn tall: an outage beginning; the others short: the source still down)."""

    label: str
    events: Sequence[tuple[datetime, bool]]


def timeline(chart_id: str, start: datetime, end: datetime, rows: Sequence[Row], *,
             title: str, summary: str) -> Markup:
    """Events on a time axis, a row each."""
    row_h = 26
    height = TOP + row_h * max(len(rows), 1) + BOTTOM
    span = max((end - start).total_seconds(), 1.0)
    left = 96
    plot_w = WIDTH - left - RIGHT
    parts = _open(chart_id, title, summary, height)
    for k, row in enumerate(rows):
        y = TOP + row_h * k + row_h / 2
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'fill="#1d2330">{escape(row.label[:16])}</text>')
        parts.append(f'<line x1="{left}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#d0d5dd"/>')
        for moment, strong in row.events:
            x = left + plot_w * min(max((moment - start).total_seconds() / span, 0), 1)
            size = 9 if strong else 5
            parts.append(f'<line class="{"event-strong" if strong else "event"}" '
                         f'x1="{x:.1f}" x2="{x:.1f}" y1="{y - size:.1f}" y2="{y + size:.1f}" '
                         f'stroke="#b91c1c" stroke-width="{2 if strong else 1.2}">'
                         f'<title>{escape(row.label)} {escape(moment.strftime("%H:%M:%S"))} '
                         f'UTC{"" if strong else " (still down)"}</title></line>')
    axis_y = TOP + row_h * max(len(rows), 1)
    parts.append(f'<line x1="{left}" x2="{WIDTH - RIGHT}" y1="{axis_y}" y2="{axis_y}" '
                 f'stroke="#98a2b3"/>')
    whole = end - start
    for fraction, anchor in ((0, "start"), (0.5, "middle"), (1, "end")):
        moment = start + whole * fraction
        if fraction and whole < timedelta(minutes=2):  # seconds after the start
            text = f"+{seconds_text(whole.total_seconds() * fraction)}"
        else:
            text = moment.strftime("%H:%M:%S" if whole <= timedelta(hours=2) else "%H:%M")
        parts.append(f'<text x="{left + plot_w * fraction:.1f}" y="{axis_y + 14}" '
                     f'text-anchor="{anchor}" fill="#475467">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
