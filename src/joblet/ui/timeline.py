"""A workflow's jobs on a time axis (a Gantt chart), drawn as SVG on the
server: one row per job, a bar from its start to its end (to now while it
runs), coloured by status through the page's stylesheet. Pure; no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, ROW_H, BAR_H, LABEL_W, PAD, AXIS_H, TICKS = 760, 24, 16, 140, 10, 22, 5
RIGHT = 28  # room for the last tick's label
AXIS_W = WIDTH - LABEL_W - PAD - RIGHT


@dataclass(frozen=True)
class Span:
    name: str
    status: str
    start: float | None  # seconds since the epoch; None: not started
    end: float | None  # None: still running (or never started)
    href: str = ""


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _bounds(spans: Sequence[Span], now: float) -> tuple[float, float]:
    starts = [s.start for s in spans if s.start is not None]
    if not starts:
        return now, now + 1
    ends = [s.end if s.end is not None else now for s in spans if s.start is not None]
    first = min(starts)
    return first, max(*ends, first + 1)  # at least a second wide


def render_timeline(spans: Sequence[Span], now: float) -> str:
    """The rows in the given order; the axis from the first start to the
    last end (now, while something runs), ticks in time since the first start."""
    first, last = _bounds(spans, now)
    scale = AXIS_W / (last - first)
    height = AXIS_H + len(spans) * ROW_H + PAD
    parts = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
             f'height="{height}" viewBox="0 0 {WIDTH} {height}">']  # fmt: skip
    for i in range(TICKS + 1):
        x = LABEL_W + PAD + AXIS_W * i / TICKS
        parts.append(f'<line class="tick" x1="{x:.1f}" y1="{AXIS_H - 4}" x2="{x:.1f}" '
                     f'y2="{height - PAD}"/><text class="axis" x="{x:.1f}" y="{AXIS_H - 8}">'
                     f"{_clock((last - first) * i / TICKS)}</text>")  # fmt: skip
    for row, span in enumerate(spans):
        y = AXIS_H + row * ROW_H
        status = escape(span.status.lower() or "unknown")
        label = f'<text class="label" x="{PAD}" y="{y + BAR_H - 3}">{escape(span.name[:20])}</text>'
        bar = ""
        if span.start is not None:
            x0 = LABEL_W + PAD + (span.start - first) * scale
            x1 = LABEL_W + PAD + ((span.end if span.end is not None else now) - first) * scale
            bar = (f'<rect class="bar s-{status}" x="{x0:.1f}" y="{y + 2}" '
                   f'width="{max(x1 - x0, 2):.1f}" height="{BAR_H}" rx="3"/>')  # fmt: skip
        group = (f'<g class="span" data-name="{escape(span.name)}" data-status="{status}">'
                 f"{label}{bar}</g>")  # fmt: skip
        if span.href:
            group = f'<a href="{escape(span.href)}">{group}</a>'
        parts.append(group)
    parts.append("</svg>")
    return "".join(parts)


def timestamp_s(stamp: object) -> float | None:
    """A proto Timestamp as seconds; None when unset (zero)."""
    seconds, nanos = getattr(stamp, "seconds", 0), getattr(stamp, "nanos", 0)
    return seconds + nanos / 1e9 if seconds or nanos else None
