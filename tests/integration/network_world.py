"""A daemon in a network namespace of the test's own, wired to an "outside".

    daemon netns                               outside netns
    joblet serve, launcher, jobs               outside_services.py
    uplink0 192.0.2.1/24  <-- veth -->  out0 192.0.2.2/24
    default via 192.0.2.2                      lo: 198.51.100.1 (TCP 8080/8081,
                                                   UDP 9999), 198.51.100.53 (DNS)

Every packet of a test stays in these two namespaces (TEST-NET addresses
only); the host's interfaces and nftables rules are never changed. Bridges,
veths and the daemon's nft table live and die with the daemon's namespace.
`nsenter --net` enters it (not `ip netns exec`, which remounts /sys and would
hide the cgroup mounts). The test talks gRPC to 127.0.0.1:PORT on the host,
where a small relay forwards each connection to the daemon's loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from joblet.isolation import libc
from joblet.network.addressing import daemon_prefix

from .conftest import (
    RunningDaemon,
    _remove_cgroup_parent,
    _stop_launcher,
    free_port,
    write_test_config,
)
from .outside_services import DNS, NAMES, SERVER

UPLINK = ("192.0.2.1", "192.0.2.2")  # TEST-NET-1: (daemon side = NAT address, outside)
OUTSIDE_ADDR, DNS_ADDR = SERVER, DNS
OUTSIDE_NAME = next(iter(NAMES))
T = TypeVar("T")


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """fn() in a fresh thread that joined `netns` (setns changes only the
    calling thread's network namespace, so the test process stays put)."""
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY)
            try:
                libc.setns(fd, libc.CLONE_NEWNET)
            finally:
                os.close(fd)
            box["ok"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["ok"]  # type: ignore[no-any-return]


def _sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


class World:
    """The two namespaces, the veth between them and the outside's services."""

    def __init__(self) -> None:
        self._holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
        self.netns = f"/proc/{self._holder.pid}/ns/net"
        script = Path(__file__).with_name("outside_services.py")
        self._outside = subprocess.Popen(
            ["unshare", "--net", sys.executable, str(script)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert self._outside.stdout is not None
            if self._outside.stdout.readline().strip() != "ready":
                raise RuntimeError("the outside's services did not start")
            self._wire()
        except BaseException:
            self.close()
            raise

    def _wire(self) -> None:
        outside = str(self._outside.pid)
        self.ip("link", "set", "lo", "up")
        self.ip("link", "add", "uplink0", "type", "veth", "peer", "name", "out0", "netns", outside)
        self.ip("addr", "add", f"{UPLINK[0]}/24", "dev", "uplink0")
        self.ip("link", "set", "uplink0", "up")
        self.ip("route", "add", "default", "via", UPLINK[1])
        there = ["nsenter", f"--net=/proc/{outside}/ns/net", "ip"]
        _sh(*there, "addr", "add", f"{UPLINK[1]}/24", "dev", "out0")
        _sh(*there, "link", "set", "out0", "up")

    def run(self, *argv: str) -> str:
        """A command in the daemon's namespace; its stdout."""
        return _sh("nsenter", f"--net={self.netns}", *argv)

    def ip(self, *args: str) -> str:
        return self.run("ip", *args)

    def links(self) -> list[str]:
        return [line.split()[0].split("@")[0] for line in self.ip("-br", "link").splitlines()]

    def nft_tables(self) -> list[str]:
        return self.run("nft", "list", "tables").split("\n")

    def report(self) -> dict[str, list[list[str]]]:
        """What the outside's DNS responder and UDP recorder have seen."""

        def ask() -> dict[str, list[list[str]]]:
            with socket.create_connection((OUTSIDE_ADDR, 8081), timeout=5) as conn:
                data = b"".join(iter(lambda: conn.recv(65536), b""))
            return json.loads(data)  # type: ignore[no-any-return]

        return in_netns(self.netns, ask)

    def close(self) -> None:
        for proc in (self._outside, self._holder):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for pipe in (self._outside.stdin, self._outside.stdout):
            if pipe is not None:
                pipe.close()


class Relay:
    """127.0.0.1:port on the host, forwarded to 127.0.0.1:port in `netns`."""

    def __init__(self, port: int, netns: str) -> None:
        self.port, self.netns = port, netns
        self._server = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # the listener was closed
            while True:
                client, _ = self._server.accept()
                threading.Thread(target=self._join, args=(client,), daemon=True).start()

    def _join(self, client: socket.socket) -> None:
        try:
            upstream = in_netns(
                self.netns, lambda: socket.create_connection(("127.0.0.1", self.port))
            )
        except OSError:
            client.close()
            return
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def close(self) -> None:
        self._server.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _wait_listening(world: World, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    def probe() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    deadline = time.monotonic() + 20
    while not in_netns(world.netns, probe):
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"daemon did not listen on {port}:\n{log.read_text()}")
        time.sleep(0.05)


def _serve(world: World, config_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            ["nsenter", f"--net={world.netns}", sys.executable, "-m", "joblet.daemon.main",
             "serve", "--config", str(config_path), "--log-level", "DEBUG"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


@dataclass
class NetnsDaemon(RunningDaemon):
    """A RunningDaemon whose `joblet serve` runs inside the world's namespace."""

    world: World
    relay: Relay

    def restart(self) -> None:
        self.proc = _serve(self.world, self.config_path, self.log_path)
        _wait_listening(self.world, self.port, self.proc, self.log_path)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _stop_launcher(self.root)
        _remove_cgroup_parent(self.cgroup_parent())
        self.relay.close()
        # Bridges and the nft table go with the namespace (World.close).

    def cgroup_parent(self) -> str:
        return str(yaml.safe_load(self.config_path.read_text())["cgroup"]["parent"])

    def prefix(self) -> str:
        """The first characters of every interface this daemon makes."""
        return daemon_prefix((self.root / "state" / "node-id").read_text().strip())


def start_netns_daemon(
    tmp: Path, world: World, sections: Mapping[str, Mapping[str, Any]] | None = None
) -> NetnsDaemon:
    """`joblet setup` in `tmp`, then `joblet serve` inside the world's
    namespace, with the outside's DNS responder as the jobs' nameserver."""
    root = tmp / "root"
    port = free_port()
    merged: dict[str, Mapping[str, Any]] = {"network": {"dns": [DNS_ADDR]}}
    for name, values in (sections or {}).items():
        merged[name] = {**merged.get(name, {}), **values}
    config_path = write_test_config(root, port, merged)
    log_path = tmp / "daemon.log"
    daemon = NetnsDaemon(
        root, port, config_path, root / "config" / "rnx-config.yml",
        _serve(world, config_path, log_path), log_path, world, Relay(port, world.netns),
    )  # fmt: skip
    try:
        _wait_listening(world, port, daemon.proc, log_path)
    except BaseException:
        daemon.stop()
        raise
    return daemon


@contextlib.contextmanager
def netns_daemon(
    tmp: Path, sections: Mapping[str, Mapping[str, Any]] | None = None
) -> Iterator[NetnsDaemon]:
    """A world and a daemon in it, both gone afterwards."""
    world = World()
    try:
        daemon = start_netns_daemon(tmp, world, sections)
        try:
            yield daemon
        finally:
            daemon.stop()
    finally:
        world.close()
