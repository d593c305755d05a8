"""NetworkService: custom networks (create, list, remove).

    manager = NetworkManager(parse_network_config(raw.get("network")), DIR/network, daemon_id)
    manager.start()
    pb_grpc.add_NetworkServiceServicer_to_server(NetworkService(manager, users_of), server)

`users_of(name)` returns the ids of queued or scheduled jobs that name the
network (running ones hold an allocation the manager knows about already).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.daemon.errors import unary
from joblet.network.manager import NetworkInfo, NetworkManager

Context = Any  # grpc.aio.ServicerContext
UsersOf = Callable[[str], Iterable[str]]


def network_to_pb(info: NetworkInfo) -> pb.Network:
    return pb.Network(name=info.name, cidr=info.cidr, bridge=info.bridge, jobCount=info.job_count)


class NetworkService(pb_grpc.NetworkServiceServicer):
    def __init__(self, manager: NetworkManager, users_of: UsersOf = lambda _name: ()) -> None:
        self._manager = manager
        self._users_of = users_of

    @unary
    async def CreateNetwork(
        self, request: pb.CreateNetworkReq, context: Context
    ) -> pb.CreateNetworkRes:
        info = await asyncio.to_thread(self._manager.create_network, request.name, request.cidr)
        return pb.CreateNetworkRes(name=info.name, cidr=info.cidr, bridge=info.bridge)

    @unary
    async def ListNetworks(self, request: pb.EmptyRequest, context: Context) -> pb.Networks:
        infos = self._manager.list_networks()
        return pb.Networks(networks=[network_to_pb(i) for i in infos])

    @unary
    async def RemoveNetwork(
        self, request: pb.RemoveNetworkReq, context: Context
    ) -> pb.RemoveNetworkRes:
        users = list(self._users_of(request.name))
        await asyncio.to_thread(self._manager.remove_network, request.name, users)
        return pb.RemoveNetworkRes(success=True, message=f"network {request.name!r} removed")
