"""A workflow's timeline: bars from start to end on one axis, running ones to now."""

from __future__ import annotations

import re

from joblet.api import joblet_pb2 as pb
from joblet.ui.timeline import AXIS_W, LABEL_W, PAD, Span, render_timeline, timestamp_s


def bars(svg: str) -> dict[str, tuple[float, float]]:
    pattern = (
        r'data-name="([^"]+)"[^>]*>(?:<text[^>]*>[^<]*</text>)'
        r'<rect class="bar [^"]+" x="([\d.]+)" y="\d+" width="([\d.]+)"'
    )
    found = re.findall(pattern, svg)
    return {name: (float(x), float(w)) for name, x, w in found}


def test_bars_span_start_to_end_and_a_running_one_reaches_now() -> None:
    spans = [Span("a", "COMPLETED", 100.0, 110.0), Span("b", "RUNNING", 110.0, None),
             Span("c", "PENDING", None, None, href="/jobs/c")]  # fmt: skip
    svg = render_timeline(spans, now=120.0)
    got = bars(svg)
    left, right = LABEL_W + PAD, LABEL_W + PAD + AXIS_W
    assert got["a"][0] == left and abs(got["a"][0] + got["a"][1] - (left + right) / 2) < 0.2
    assert abs(got["b"][0] + got["b"][1] - right) < 0.2  # to now, the axis's end
    assert "c" not in got and 'data-name="c" data-status="pending"' in svg  # no bar yet
    assert '<a href="/jobs/c">' in svg
    assert 'class="bar s-running"' in svg and ">0m20s</text>" in svg  # the last tick


def test_names_are_text_and_nothing_started_still_draws() -> None:
    svg = render_timeline([Span("<b>x</b>", "QUEUED", None, None)], now=5.0)
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert render_timeline([], now=5.0).startswith("<svg")


def test_a_proto_timestamp_becomes_seconds_and_unset_is_none() -> None:
    assert timestamp_s(pb.Timestamp(seconds=10, nanos=500_000_000)) == 10.5
    assert timestamp_s(pb.Timestamp()) is None
