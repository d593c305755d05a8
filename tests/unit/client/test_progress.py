"""The progress line's text (pure) and its redraw throttling."""

from __future__ import annotations

import io

from joblet.client.progress import Progress, human_bytes, progress_line


def test_line_shows_bytes_rate_and_eta() -> None:
    line = progress_line(512 << 20, 1 << 30, 2.0, width=10)
    assert line == "[#####     ] 512.0 MiB / 1.0 GiB  256.0 MiB/s  ETA 0:02"
    assert progress_line(0, 10, 0.0).endswith("ETA -:--")
    assert human_bytes(5) == "5 B"


def test_redraws_are_throttled() -> None:
    now = [0.0]
    out = io.StringIO()
    bar = Progress(100, out, clock=lambda: now[0])
    for _ in range(10):
        bar.advance(1)  # all at the same instant: drawn once
    now[0] = 1.0
    bar.advance(1)
    bar.close()
    assert out.getvalue().count("\r") == 3 and out.getvalue().endswith("\n")
