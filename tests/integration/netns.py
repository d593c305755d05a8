"""Network namespaces of the tests' own, and a loopback relay into one.

Every test daemon runs inside a `Netns`: its bridges, veths and nftables
table live and die with that namespace, so no test ever changes the host's
interfaces or rules. The test process itself stays in the host's namespace
(grpc's threads could not follow it anyway) and reaches the daemon through a
`Relay`: 127.0.0.1:PORT on the host, forwarded to 127.0.0.1:PORT inside.

`nsenter --net` enters a namespace (not `ip netns exec`, which remounts /sys
and would hide the cgroup mounts).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from joblet.isolation import libc

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


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


class Netns:
    """A network namespace with only loopback (up), held by a `sleep`; it
    goes when `close` ends the holder and the last process in it is gone."""

    def __init__(self) -> None:
        # The holder says when it is inside: until unshare(2) has run, its
        # /proc/PID/ns/net is still the host's, and whatever entered it then
        # (a daemon, an `ip` command) would act on the host.
        self._holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && echo in && exec sleep infinity"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.netns = f"/proc/{self._holder.pid}/ns/net"
        assert self._holder.stdout is not None
        with self._holder.stdout:
            said = self._holder.stdout.readline().strip()
        if said != "in":
            self.close()
            raise RuntimeError("could not make a network namespace (unshare --net)")

    def run(self, *argv: str) -> str:
        """A command in this namespace; its stdout."""
        return sh("nsenter", f"--net={self.netns}", *argv)

    def ip(self, *args: str) -> str:
        return self.run("ip", *args)

    def links(self) -> list[str]:
        return [line.split()[0].split("@")[0] for line in self.ip("-br", "link").splitlines()]

    def nft_tables(self) -> list[str]:
        return self.run("nft", "list", "tables").split("\n")

    def close(self) -> None:
        if self._holder.poll() is None:
            self._holder.kill()
        self._holder.wait()


class Relay:
    """127.0.0.1 on the host, on a port the kernel picks, forwarded to the
    same port on the loopback of `netns`. Binding here first gives a port
    that is free on the host; inside the fresh namespace every port is."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # the listener was closed
            while True:
                client, _ = self._server.accept()
                threading.Thread(target=self._join, args=(client,), daemon=True).start()

    def _join(self, client: socket.socket) -> None:
        try:
            # A socket belongs to the namespace it was made in; connecting
            # may then happen from any thread.
            upstream = in_netns(self.netns, socket.socket)
        except OSError:  # the namespace is gone
            client.close()
            return
        try:
            upstream.connect(("127.0.0.1", self.port))
        except OSError:
            client.close()
            upstream.close()
            return
        with self._lock:
            self._open |= {client, upstream}
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        with self._lock:
            self._open -= {client, upstream}
        client.close()
        upstream.close()

    def close(self) -> None:
        """Stop listening and cut every connection still open."""
        with contextlib.suppress(OSError):  # wakes the accept (close alone would not)
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
