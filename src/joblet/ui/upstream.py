"""The UI's gRPC channels to its daemons: one client certificate per role
and node.

Each browser session's calls go through the channel of its own role, so the
daemon checks the role a second time and no UI bug lifts a viewer to admin.
The session also names the node its pages talk to (`ui.nodes`); the node the
UI belongs to is `LOCAL_NODE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from joblet.client.config import NodeConfig, load_rnx_config
from joblet.client.connection import channel_options
from joblet.errors import ConfigError
from joblet.ui.config import LOCAL_NODE
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
    cluster: Any


def _open(node: NodeConfig) -> RoleStubs:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=node.ca.encode(),
        private_key=node.key.encode(),
        certificate_chain=node.cert.encode(),
    )
    channel = grpc.aio.secure_channel(node.address, credentials, options=channel_options(node))
    services = ("JobService", "NetworkService", "VolumeService", "MonitoringService",
                "RuntimeService", "ClusterService")  # fmt: skip
    return RoleStubs(channel, *(ServiceStub(channel, name) for name in services))


def read_role_nodes(path: Path) -> dict[str, NodeConfig]:
    """The `admin` and `viewer` nodes of an rnx config (ui-clients.yml)."""
    try:
        config = load_rnx_config(path)
        return {role: config.node(role) for role in ROLES}
    except Exception as exc:  # the client's config errors, OSError
        raise ConfigError(f"the UI's client certificates ({path}): {exc}") from exc


def read_all_nodes(
    local: Path, others: tuple[tuple[str, Path], ...]
) -> dict[str, dict[str, NodeConfig]]:
    """Every node's role certificates: this node's, then `ui.nodes` in order."""
    nodes = {LOCAL_NODE: read_role_nodes(local)}
    for name, path in others:
        nodes[name] = read_role_nodes(path)
    return nodes


class UnknownNode(LookupError):
    """A node name that is not in the UI's config."""


class Upstream:
    """Channels to the daemons, opened on first use (after the UI bound its
    port and dropped root: the keys were read before, in `read_role_nodes`)."""

    def __init__(self, nodes: dict[str, dict[str, NodeConfig]]) -> None:
        self._nodes = nodes  # node name -> role -> its client certificate
        self._stubs: dict[tuple[str, str], RoleStubs] = {}

    @property
    def address(self) -> str:
        return self._nodes[LOCAL_NODE]["viewer"].address

    @property
    def names(self) -> list[str]:
        return list(self._nodes)

    def address_of(self, node: str) -> str:
        return self._check(node)["viewer"].address

    def _check(self, node: str) -> dict[str, NodeConfig]:
        try:
            return self._nodes[node]
        except KeyError:
            raise UnknownNode(f"node {node!r} is not one of: {', '.join(self._nodes)}") from None

    def as_role(self, role: str, node: str = LOCAL_NODE) -> RoleStubs:
        key = (node, role)
        if key not in self._stubs:
            self._stubs[key] = _open(self._check(node)[role])
        return self._stubs[key]

    async def close(self) -> None:
        for stubs in self._stubs.values():
            await stubs.channel.close(None)
        self._stubs.clear()
