"""How `rnx runtime` draws runtimes and an install's progress. Pure text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from joblet.cli.metrics import human_bytes
from joblet.cli.node_select import with_node_column
from joblet.cli.output import format_table

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb

BAR_WIDTH = 24


def render_runtimes(runtimes: list[pb.RuntimeInfo], nodes: Sequence[str] = ()) -> str:
    """The table; with `nodes` (one per runtime), a NODE column first."""
    if not runtimes:
        return "No runtimes installed."
    headers = ["NAME", "LANGUAGE", "VERSION", "SIZE", "AVAILABLE", "DESCRIPTION"]
    rows = [
        [r.name, r.language, r.version, human_bytes(r.sizeBytes),
         "yes" if r.available else "no", r.description]
        for r in runtimes
    ]  # fmt: skip
    if nodes:
        headers, rows = with_node_column(headers, rows, nodes)
    return format_table(headers, rows)


def render_info(info: pb.RuntimeInfo) -> str:
    req = info.requirements
    lines = [
        f"Name:          {info.name}",
        f"Language:      {info.language or '-'}",
        f"Version:       {info.version or '-'}",
        f"Description:   {info.description or '-'}",
        f"Size:          {human_bytes(info.sizeBytes)} ({info.sizeBytes} bytes)",
        f"Available:     {'yes' if info.available else 'no'}",
        f"Architectures: {', '.join(req.architectures) or 'any'}",
        f"GPU:           {'required' if req.gpu else 'no'}",
        f"Packages:      {', '.join(info.packages) or '-'}",
    ]
    return "\n".join(lines)


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


def render_progress(progress: pb.RuntimeInstallationProgress) -> str:
    """The step line, and the byte bar under it while bytes are counted."""
    if progress.bytes_total > 0:
        return step_line(progress) + "\n" + render_bytes(progress)
    return step_line(progress)


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
