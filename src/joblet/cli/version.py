"""`rnx version` / `rnx --version`: this client's version and the node's daemon's."""

from __future__ import annotations

import json
from importlib import metadata

from joblet.cli.context import CommandContext
from joblet.client.errors import CliError


def client_version() -> str:
    try:
        return metadata.version("joblet")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def show(ctx: CommandContext) -> int:
    """The client's version always; the server's, or why it could not be asked."""
    client = client_version()
    server, problem = "", ""
    try:
        with ctx.job_client() as connection:
            info = connection.server_version()
        server = f"{info.component or 'joblet'} {info.version}".strip()
    except CliError as exc:
        problem = exc.message
    if ctx.json:
        doc = {"client": {"version": client}, "server": {"version": server or None}}
        if problem:
            doc["error"] = {"message": problem}
        print(json.dumps(doc), file=ctx.out, flush=True)
    else:
        ctx.print(f"Client: rnx {client}")
        ctx.print(f"Server: {server}" if server else "Server: unknown")
    if problem:
        if not ctx.json:
            ctx.report(f"error: {problem}")
        return 1
    return 0
