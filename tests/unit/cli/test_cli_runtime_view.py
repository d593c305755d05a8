from __future__ import annotations

from joblet.api import joblet_pb2 as pb
from joblet.cli.runtime_view import render_info, render_progress, render_runtimes
from joblet.client.progress_text import ProgressView, bar


def test_bar_fills_with_progress() -> None:
    assert bar(0, 6, width=6) == "[------]"
    assert bar(3, 6, width=6) == "[###---]"
    assert bar(6, 6, width=6) == "[######]"
    assert bar(9, 6, width=6) == "[######]"
    assert bar(5, 0, width=4) == "[----]"


def test_progress_line_and_byte_bar() -> None:
    step = pb.RuntimeInstallationProgress(message="build: job x", step=4, total_steps=6)
    assert render_progress(step).endswith("] 4/6 build: job x")
    fetch = pb.RuntimeInstallationProgress(
        message="fetch: downloading", step=2, total_steps=6, bytes_done=512, bytes_total=1024
    )
    first, second = render_progress(fetch).splitlines()
    assert "2/6 fetch" in first
    assert second.strip().startswith("[" + "#" * 12 + "-" * 12 + "]")
    assert second.endswith("512 B / 1.0 KiB")


def test_table_and_info() -> None:
    info = pb.RuntimeInfo(
        name="python-3.11", language="python", version="3.11", description="numpy",
        sizeBytes=3 * 1024 * 1024, packages=["numpy==2.2.6"], available=False,
        requirements=pb.RuntimeRequirements(architectures=["amd64"], gpu=True),
    )  # fmt: skip
    table = render_runtimes([info]).splitlines()
    assert table[0].split() == ["NAME", "LANGUAGE", "VERSION", "SIZE", "AVAILABLE", "DESCRIPTION"]
    assert table[1].split() == ["python-3.11", "python", "3.11", "3.0", "MiB", "no", "numpy"]
    assert render_runtimes([]) == "No runtimes installed."
    text = render_info(info)
    assert "Packages:      numpy==2.2.6" in text
    assert "GPU:           required" in text
    assert "Architectures: amd64" in text


def _fetch(done: int, total: int = 1000) -> pb.RuntimeInstallationProgress:
    return pb.RuntimeInstallationProgress(
        message="fetch: downloading", step=2, total_steps=6, bytes_done=done, bytes_total=total
    )


def test_view_prints_a_step_once_and_its_bar_at_tenths() -> None:
    view = ProgressView(terminal=False)
    first = view.draw(pb.RuntimeInstallationProgress(message="validate: ok", step=1, total_steps=6))
    assert first.endswith("1/6 validate: ok\n")
    out = "".join(view.draw(_fetch(done)) for done in range(0, 1001, 10))
    lines = out.splitlines()
    assert lines[0].endswith("2/6 fetch: downloading")
    assert len(lines) == 1 + 11  # 0%, 10%, ... 100%
    assert lines[-1].endswith("1000 B / 1000 B")
    assert view.draw(pb.RuntimeInstallationProgress(message="unpack", step=3, total_steps=6))


def test_view_redraws_the_bar_in_place_on_a_terminal() -> None:
    view = ProgressView(terminal=True)
    out = view.draw(_fetch(0)) + view.draw(_fetch(500))
    assert out.count("\n") == 1  # the step line; the bar stays open
    assert out.count("\r\x1b[K") == 2
    closed = view.draw(pb.RuntimeInstallationProgress(message="unpack", step=3, total_steps=6))
    assert closed.startswith("\n")  # the open bar ends before the next step
