"""`joblet mcp` against a real daemon, driven by the `mcp` client library:
over stdio and over streamable HTTP, with the caller's certificate and role."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from .conftest import RunningDaemon

mcp = pytest.importorskip("mcp", reason="the optional mcp package (joblet[mcp]) is not installed")

from mcp import Client as McpClient  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402


def _server_argv(daemon: RunningDaemon, *extra: str) -> list[str]:
    return ["-m", "joblet.daemon.main", "mcp", "--config", str(daemon.rnx_config), *extra]


def _payload(result: Any) -> Any:
    """A tool result's structured content, else its text parsed as JSON or kept as text."""
    assert not result.is_error, result
    if result.structured_content is not None:
        content = result.structured_content
        return content.get("result", content) if set(content) == {"result"} else content
    text = "".join(getattr(block, "text", "") for block in result.content)
    try:
        return json.loads(text)
    except ValueError:
        return text


async def _exercise(client: McpClient) -> dict[str, Any]:
    names = {tool.name for tool in (await client.list_tools()).tools}
    ran = _payload(await client.call_tool(
        "run_job", {"command": "sh", "args": ["-c", "echo from-mcp; exit 4"], "wait_seconds": 30}
    ))  # fmt: skip
    status = _payload(await client.call_tool("job_status", {"job_id": ran["job_id"]}))
    logs = _payload(await client.call_tool("job_logs", {"job_id": ran["job_id"]}))
    listed = _payload(await client.call_tool("list_jobs", {"limit": 500}))
    node = _payload(await client.call_tool("node_status", {}))
    return {"names": names, "ran": ran, "status": status, "logs": logs, "listed": listed,
            "node": node}  # fmt: skip


def _check(seen: dict[str, Any]) -> None:
    assert {"run_job", "job_status", "job_logs", "stop_job", "list_jobs", "job_metrics"} <= seen[
        "names"
    ]
    ran = seen["ran"]
    assert (ran["status"], ran["exit_code"], ran["output"]) == ("FAILED", 4, "from-mcp\n")
    assert seen["status"]["end_reason"] == "exit code 4"
    assert seen["logs"] == "from-mcp\n"
    assert any(job["job_id"] == ran["job_id"] for job in seen["listed"])
    assert seen["node"]["available"] is True


def test_stdio_tools(daemon: RunningDaemon) -> None:
    params = StdioServerParameters(command=sys.executable, args=_server_argv(daemon))

    async def main() -> dict[str, Any]:
        async with McpClient(params) as client:
            return await _exercise(client)

    _check(asyncio.run(main()))


def test_the_callers_role_applies(daemon: RunningDaemon) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=_server_argv(daemon, "--node", "viewer")
    )

    async def main() -> Any:
        async with McpClient(params) as client:
            return await client.call_tool("run_job", {"command": "true"})

    result = asyncio.run(main())
    assert result.is_error
    text = "".join(getattr(block, "text", "") for block in result.content)
    assert "PERMISSION_DENIED" in text, text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_streamable_http_tools(daemon: RunningDaemon) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, *_server_argv(daemon, "--http", "--port", str(port))],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, server.stderr.read() if server.stderr else b""
            assert time.monotonic() < deadline, "the MCP server did not listen"
            time.sleep(0.1)

        async def main() -> dict[str, Any]:
            async with McpClient(f"http://127.0.0.1:{port}/mcp") as client:
                return await _exercise(client)

        _check(asyncio.run(main()))
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()
