"""The UI's gRPC channels to the daemon: one client certificate per role.

Each browser session's calls go through the channel of its own role, so the
daemon checks the role a second time and no UI bug lifts a viewer to admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from joblet.client.config import NodeConfig, load_rnx_config
from joblet.client.connection import channel_options
from joblet.errors import ConfigError
from joblet.ui.stubs import ServiceStub
from joblet.ui.tokens import ROLES


@dataclass
class RoleStubs:
    """The API's stubs over one role's channel."""

    channel: grpc.aio.Channel
    jobs: Any
    networks: Any
    volumes: Any
    monitoring: Any
    runtimes: Any


def _open(node: NodeConfig) -> RoleStubs:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=node.ca.encode(),
        private_key=node.key.encode(),
        certificate_chain=node.cert.encode(),
    )
    channel = grpc.aio.secure_channel(node.address, credentials, options=channel_options(node))
    services = ("JobService", "NetworkService", "VolumeService", "MonitoringService",
                "RuntimeService")  # fmt: skip
    return RoleStubs(channel, *(ServiceStub(channel, name) for name in services))


def read_role_nodes(path: Path) -> dict[str, NodeConfig]:
    """The `admin` and `viewer` nodes of an rnx config (ui-clients.yml)."""
    try:
        config = load_rnx_config(path)
        return {role: config.node(role) for role in ROLES}
    except Exception as exc:  # the client's config errors, OSError
        raise ConfigError(f"the UI's client certificates ({path}): {exc}") from exc


class Upstream:
    """Channels to the daemon, opened on first use (after the UI bound its
    port and dropped root: the keys were read before, in `read_role_nodes`)."""

    def __init__(self, nodes: dict[str, NodeConfig]) -> None:
        self._nodes = nodes
        self._stubs: dict[str, RoleStubs] = {}

    @property
    def address(self) -> str:
        return self._nodes["viewer"].address

    def as_role(self, role: str) -> RoleStubs:
        if role not in self._stubs:
            self._stubs[role] = _open(self._nodes[role])
        return self._stubs[role]

    async def close(self) -> None:
        for stubs in self._stubs.values():
            await stubs.channel.close(None)
        self._stubs.clear()
