"""The files `joblet setup` writes work together: a server built from
joblet-config.yml accepts the rnx-config.yml nodes over real mutual TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import yaml

from joblet.config.loader import load_daemon_config
from joblet.security.interceptor import AuthInterceptor, get_caller
from joblet.security.tls import channel_credentials, server_credentials
from joblet.setup.command import run_setup


def _raw(data: bytes) -> bytes:
    return data


async def _whoami(request: bytes, context: Any) -> bytes:
    caller = get_caller()
    return f"{caller.name if caller else ''}".encode()


async def test_setup_output_serves_admin_and_limits_viewer(tmp_path: Path) -> None:
    result = run_setup(tmp_path, "127.0.0.1", 50051, [], force=False)
    config = load_daemon_config(result.files.daemon_config)
    server = grpc.aio.server(interceptors=[AuthInterceptor()])
    methods = {
        "ListJobs": grpc.unary_unary_rpc_method_handler(_whoami),
        "RunJob": grpc.unary_unary_rpc_method_handler(_whoami),
    }
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("joblet.JobService", methods)]
    )
    # Port 0 rather than the configured one, so parallel test runs never collide.
    port = server.add_secure_port(f"{config.server.address}:0", server_credentials(config.security))
    await server.start()
    try:
        nodes = yaml.safe_load(result.files.rnx_config.read_text())["nodes"]
        for node, expect_run in [("default", True), ("viewer", False)]:
            entry = nodes[node]
            host = entry["address"].rsplit(":", 1)[0]
            creds = channel_credentials(entry["ca"], entry["cert"], entry["key"])
            async with grpc.aio.secure_channel(f"{host}:{port}", creds) as channel:
                listed = await channel.unary_unary("/joblet.JobService/ListJobs", _raw, _raw)(
                    b"", timeout=10
                )
                assert listed == ("admin" if expect_run else "viewer").encode()
                run = channel.unary_unary("/joblet.JobService/RunJob", _raw, _raw)
                if expect_run:
                    assert await run(b"", timeout=10) == b"admin"
                else:
                    with pytest.raises(grpc.aio.AioRpcError) as info:
                        await run(b"", timeout=10)
                    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    finally:
        await server.stop(grace=None)
