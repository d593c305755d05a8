"""How `rnx runtime` draws runtimes and an install's progress. Pure text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from joblet.cli.metrics import human_bytes
from joblet.cli.output import format_table

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb

BAR_WIDTH = 24


def render_runtimes(runtimes: list[pb.RuntimeInfo]) -> str:
    if not runtimes:
        return "No runtimes installed."
    headers = ["NAME", "LANGUAGE", "VERSION", "SIZE", "AVAILABLE", "DESCRIPTION"]
    rows = [
        [r.name, r.language, r.version, human_bytes(r.sizeBytes),
         "yes" if r.available else "no", r.description]
        for r in runtimes
    ]  # fmt: skip
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


def render_progress(progress: pb.RuntimeInstallationProgress) -> str:
    line = f"{bar(progress.step, progress.total_steps)} {progress.step}/{progress.total_steps} "
    line += progress.message
    if progress.bytes_total > 0:
        line += (
            f"\n    {bar(progress.bytes_done, progress.bytes_total)}"
            f" {human_bytes(progress.bytes_done)} / {human_bytes(progress.bytes_total)}"
        )
    return line
