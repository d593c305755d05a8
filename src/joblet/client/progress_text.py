"""Text for an install's progress and byte counts, shared by rnx and the web
UI (no CLI or web code here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb

BAR_WIDTH = 24


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def bar(done: float, total: float, width: int = BAR_WIDTH) -> str:
    """`[#####-----]` for done out of total (an empty bar when total is 0)."""
    filled = 0 if total <= 0 else min(width, int(width * done / total))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def step_line(progress: pb.RuntimeInstallationProgress) -> str:
    steps = f"{progress.step}/{progress.total_steps}"
    return f"{bar(progress.step, progress.total_steps)} {steps} {progress.message}"


def render_bytes(progress: pb.RuntimeInstallationProgress) -> str:
    done, total = progress.bytes_done, progress.bytes_total
    return f"    {bar(done, total)} {human_bytes(done)} / {human_bytes(total)}"


class ProgressView:
    """What to draw for each progress event: a step's line once, then its byte
    bar, redrawn in place on a terminal, at every tenth elsewhere."""

    def __init__(self, terminal: bool) -> None:
        self._terminal = terminal
        self._step = 0
        self._tenth = -1
        self._open_bar = False  # a terminal's bar drawn without its newline yet

    def draw(self, progress: pb.RuntimeInstallationProgress) -> str:
        parts = []
        counting = progress.bytes_total > 0
        new_step = progress.step != self._step or not counting
        if self._open_bar and new_step:
            parts.append("\n")
            self._open_bar = False
        if new_step:
            self._step, self._tenth = progress.step, -1
            parts.append(step_line(progress) + "\n")
        if not counting:
            return "".join(parts)
        finished = progress.bytes_done >= progress.bytes_total
        if self._terminal:
            parts.append("\r\x1b[K" + render_bytes(progress) + ("\n" if finished else ""))
            self._open_bar = not finished
        else:
            tenth = 10 * progress.bytes_done // progress.bytes_total
            if tenth != self._tenth:
                self._tenth = tenth
                parts.append(render_bytes(progress) + "\n")
        return "".join(parts)
