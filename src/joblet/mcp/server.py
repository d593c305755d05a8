"""The MCP server: the tools of `joblet.mcp.tools`, served over stdio or
streamable HTTP. Each call runs the SDK's (blocking) client in a thread, so
the server keeps answering while a tool waits for a job."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from joblet.mcp import tools
from joblet.sdk.client import Client
from joblet.sdk.errors import JobletException

INSTRUCTIONS = (
    "Run commands as isolated, resource-limited jobs on a joblet node and read their "
    "status, output and metrics. Jobs run with this server's client certificate and role."
)
Dict = dict[str, Any]
T = TypeVar("T")


async def _call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`func` in a thread; the node's refusal as the tool's error message
    (other exceptions MCP reports without their text)."""
    try:
        return await asyncio.to_thread(func, *args, **kwargs)
    except JobletException as exc:
        raise ToolError(str(exc)) from exc


def build_server(client: Client) -> MCPServer:
    server = MCPServer("joblet", instructions=INSTRUCTIONS)

    @server.tool(description="Start a command as a job; wait_seconds > 0 waits, with its output")
    async def run_job(  # noqa: PLR0917  (the tool's parameters, as MCP clients pass them)
        command: str,
        args: list[str] | None = None,
        name: str = "",
        max_cpu: int = 0,
        max_memory_mb: int = 0,
        network: str = "",
        wait_seconds: float = 0.0,
    ) -> Dict:
        return await _call(
            tools.run_job, client, command, args, name=name, max_cpu=max_cpu,
            max_memory_mb=max_memory_mb, network=network, wait_seconds=wait_seconds,
        )  # fmt: skip

    @server.tool(description="A job's status, exit code and why it ended")
    async def job_status(job_id: str) -> Dict:
        return await _call(tools.job_status, client, job_id)

    @server.tool(description="A job's output so far (stdout and stderr)")
    async def job_logs(job_id: str) -> str:
        return await _call(tools.job_logs, client, job_id)

    @server.tool(description="Stop a running job")
    async def stop_job(job_id: str) -> Dict:
        return await _call(tools.stop_job, client, job_id)

    @server.tool(description="The node's jobs, newest last")
    async def list_jobs(limit: int = 50) -> list[Dict]:
        return await _call(tools.list_jobs, client, limit)

    @server.tool(description="A job's latest metric samples (CPU, memory, IO, network)")
    async def job_metrics(job_id: str, last: int = 10) -> list[Dict]:
        return await _call(tools.job_metrics, client, job_id, last)

    @server.tool(description="The node's host: CPU, memory, availability")
    async def node_status() -> Dict:
        return await _call(tools.node_status, client)

    return server


def serve(node: str | None, config: str | None, http: bool, host: str, port: int) -> None:
    with Client(node, config=config) as client:
        server = build_server(client)
        if http:
            server.run("streamable-http", host=host, port=port)
        else:
            server.run("stdio")
