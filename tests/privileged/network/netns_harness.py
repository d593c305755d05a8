"""Throwaway network namespaces for network tests: everything runs in forked
processes that unshare(CLONE_NEWNET), so every interface, route and nft
table they make disappears with them. Nothing touches the host's namespace."""

from __future__ import annotations

import json
import os
import signal
import socket
import traceback
from collections.abc import Callable
from typing import Any

from joblet.isolation import libc
from joblet.isolation.child import loopback_up
from joblet.network import jobside

OUTSIDE_ADDR = "198.51.100.1"  # TEST-NET-2, on the "outside" namespace's lo
UPLINK = ("192.0.2.1", "192.0.2.2")  # TEST-NET-1: (daemon side, outside side)


def run_in_new_netns(fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    """fn() in a forked child in a new network namespace; its JSON result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            libc.unshare(libc.CLONE_NEWNET)
            loopback_up()
            result: Any = {"ok": fn()}
        except BaseException:
            result = {"error": traceback.format_exc()}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result = json.loads(data or b'{"error": "child died"}')
    if "error" in result:
        raise AssertionError(result["error"])
    return result["ok"]


def fork_job(plan: dict[str, Any], body: Callable[[], Any]) -> tuple[int, int]:
    """A 'job': builds its network exactly as the launcher's child does, then
    runs body(); returns (pid, read fd of its JSON result)."""
    host_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            host = jobside.open_host_socket()
            libc.unshare(libc.CLONE_NEWNET)
            with host:
                jobside.setup(plan, host_fd, host)
            loopback_up()
            result: Any = {"ok": body()}
        except BaseException:
            result = {"error": traceback.format_exc()}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    os.close(host_fd)
    return pid, read_end


def job_result(job: tuple[int, int]) -> Any:
    pid, fd = job
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result = json.loads(data or b'{"error": "job died"}')
    if "error" in result:
        raise AssertionError(result["error"])
    return result["ok"]


def kill(job: tuple[int, int]) -> None:
    os.kill(job[0], signal.SIGKILL)
    os.waitpid(job[0], 0)
    os.close(job[1])


def connect(address: str, port: int, timeout: float = 0.5) -> str:
    """'ok:<what the server said>' or the error's name."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as s:
            return "ok:" + s.recv(100).decode()
    except OSError as exc:
        return type(exc).__name__


def serve_peer_address(address: str, port: int, ready_w: int, count: int = 50) -> None:
    """Accept connections, answering each with the peer's address."""
    with socket.create_server((address, port)) as server:
        os.write(ready_w, b"r")
        for _ in range(count):
            conn, peer = server.accept()
            with conn:
                conn.sendall(peer[0].encode())


def start_outside() -> int:
    """The 'outside' namespace: a veth to ours, TCP server at OUTSIDE_ADDR:8080,
    default route back. Returns its pid."""
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    host_fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            libc.unshare(libc.CLONE_NEWNET)
            loopback_up()
            with IPRoute() as ipr:
                ipr.link(
                    "add",
                    ifname="out0",
                    kind="veth",
                    peer={"ifname": "uplink0", "net_ns_fd": host_fd},
                )
                idx = ipr.link_lookup(ifname="out0")[0]
                ipr.addr("add", index=idx, address=UPLINK[1], prefixlen=24)
                ipr.link("set", index=idx, state="up")
                ipr.addr("add", index=1, address=OUTSIDE_ADDR, prefixlen=32)
            serve_peer_address(OUTSIDE_ADDR, 8080, ready_w)
        finally:
            os._exit(0)
    os.read(ready_r, 1)
    os.close(host_fd)
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname="uplink0")[0]
        ipr.addr("add", index=idx, address=UPLINK[0], prefixlen=24)
        ipr.link("set", index=idx, state="up")
        ipr.route("add", dst="0.0.0.0/0", gateway=UPLINK[1])
    return pid
