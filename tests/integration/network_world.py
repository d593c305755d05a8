"""A daemon's namespace (netns.py) wired to an "outside" of the test's own.

    daemon netns                               outside netns
    joblet serve, launcher, jobs               outside_services.py
    uplink0 192.0.2.1/24  <-- veth -->  out0 192.0.2.2/24
    default via 192.0.2.2                      lo: 198.51.100.1 (TCP 8080/8081,
                                                   UDP 9999), 198.51.100.53 (DNS)

Every packet of a test stays in these two namespaces (TEST-NET addresses
only); the host's interfaces and nftables rules are never changed. The daemon
starts as every test daemon does (conftest.launch_daemon), only in a `World`
instead of a bare namespace.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .conftest import RunningDaemon, launch_daemon
from .netns import Netns, in_netns, sh
from .outside_services import DNS, NAMES, SERVER

UPLINK = ("192.0.2.1", "192.0.2.2")  # TEST-NET-1: (daemon side = NAT address, outside)
OUTSIDE_ADDR, DNS_ADDR = SERVER, DNS
OUTSIDE_NAME = next(iter(NAMES))
NetnsDaemon = RunningDaemon  # every test daemon runs in a namespace of its own
T = TypeVar("T")


class World(Netns):
    """The daemon's namespace, a veth to the outside's and the outside's services."""

    def __init__(self) -> None:
        script = Path(__file__).with_name("outside_services.py")
        self._outside = subprocess.Popen(
            ["unshare", "--net", sys.executable, str(script)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            super().__init__()
            assert self._outside.stdout is not None
            if self._outside.stdout.readline().strip() != "ready":
                raise RuntimeError("the outside's services did not start")
            self._wire()
        except BaseException:
            self.close()
            raise

    def _wire(self) -> None:
        outside = str(self._outside.pid)
        self.ip("link", "add", "uplink0", "type", "veth", "peer", "name", "out0", "netns", outside)
        self.ip("addr", "add", f"{UPLINK[0]}/24", "dev", "uplink0")
        self.ip("link", "set", "uplink0", "up")
        self.ip("route", "add", "default", "via", UPLINK[1])
        self.outside_ip("addr", "add", f"{UPLINK[1]}/24", "dev", "out0")
        self.outside_ip("link", "set", "out0", "up")

    @property
    def outside_netns(self) -> str:
        return f"/proc/{self._outside.pid}/ns/net"

    def in_outside(self, fn: Callable[[], T]) -> T:
        """fn() in a thread inside the outside's namespace."""
        return in_netns(self.outside_netns, fn)

    def outside_ip(self, *args: str) -> str:
        return sh("nsenter", f"--net={self.outside_netns}", "ip", *args)

    def report(self) -> dict[str, list[list[str]]]:
        """What the outside's DNS responder and UDP recorder have seen."""

        def ask() -> dict[str, list[list[str]]]:
            with socket.create_connection((OUTSIDE_ADDR, 8081), timeout=5) as conn:
                data = b"".join(iter(lambda: conn.recv(65536), b""))
            return json.loads(data)  # type: ignore[no-any-return]

        return in_netns(self.netns, ask)

    def close(self) -> None:
        if self._outside.poll() is None:
            self._outside.kill()
        self._outside.wait()
        for pipe in (self._outside.stdin, self._outside.stdout):
            if pipe is not None:
                pipe.close()
        if hasattr(self, "netns"):  # the namespace itself may not have started
            super().close()


@contextlib.contextmanager
def netns_daemon(
    tmp: Path, sections: Mapping[str, Mapping[str, Any]] | None = None
) -> Iterator[RunningDaemon]:
    """A daemon in a world, with the outside's DNS responder as the jobs'
    nameserver; daemon and world are gone afterwards."""
    merged: dict[str, Mapping[str, Any]] = {"network": {"dns": [DNS_ADDR]}}
    for name, values in (sections or {}).items():
        merged[name] = {**merged.get(name, {}), **values}
    daemon = launch_daemon(tmp, merged, world=World())
    try:
        yield daemon
    finally:
        daemon.stop()
