"""How `rnx runtime` draws runtimes and an install's progress. Pure text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from joblet.cli.node_select import with_node_column
from joblet.cli.output import format_table
from joblet.client.progress_text import human_bytes, render_bytes, step_line

if TYPE_CHECKING:
    from joblet.api import joblet_pb2 as pb


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


def render_progress(progress: pb.RuntimeInstallationProgress) -> str:
    """The step line, and the byte bar under it while bytes are counted."""
    if progress.bytes_total > 0:
        return step_line(progress) + "\n" + render_bytes(progress)
    return step_line(progress)
