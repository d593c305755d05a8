"""Fixtures every suite may use: a moto_server (S3, DynamoDB, CloudWatch Logs
on loopback), started once per session, and a fault-injecting TCP proxy."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from local_servers import free_port, stop_process, wait_for_port


def _moto_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "moto_server"
    return str(beside_python) if beside_python.exists() else shutil.which("moto_server")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    binary = _moto_binary()
    if binary is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc, "moto_server")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto accepts any credentials; never let the tests find real ones."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


SLOW_DOWN = (
    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\n"
    b'Content-Length: 118\r\n\r\n<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)


class FaultProxy:
    """A TCP proxy on loopback in front of `target_port`, with faults for the
    connections made while a mode is set:
      pass      forward both ways
      drop      accept and close at once (an endpoint that is away)
      delay     wait `delay_s` before forwarding
      slowdown  answer every request with S3's 503 SlowDown
      reset     forward `reset_after` bytes of the request, then a TCP reset
      throttle  forward, pausing `delay_s` after every 64 KiB sent upstream
                (checked as data flows: connections already open slow down too)
    `listener`: a listening socket made elsewhere (in a network namespace)."""

    def __init__(self, target_port: int, listener: socket.socket | None = None) -> None:
        self.target_port = target_port
        self._server = listener or socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._mode = "pass"
        self.delay_s = 0.5
        self.reset_after = 1024 * 1024
        self.seen: Counter[str] = Counter()  # connections per mode
        self.requests: list[bytes] = []  # request lines seen in pass mode
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        """Set the mode; a failing one also cuts the connections open now
        (a client's pooled connection must not outlive the outage)."""
        self._mode = mode
        if mode in ("drop", "slowdown", "reset"):
            self._cut_open()

    def _cut_open(self) -> None:
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._server.accept()
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        mode = self.mode
        with self._lock:
            self.seen[mode] += 1
            self._open.add(client)
        try:
            if mode == "drop":
                return
            if mode == "slowdown":
                self._slow_down(client)
                return
            if mode == "delay":
                time.sleep(self.delay_s)
            with socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
                with self._lock:
                    self._open.add(upstream)
                back = threading.Thread(target=_pump, args=(upstream, client, None), daemon=True)
                back.start()
                limit = self.reset_after if mode == "reset" else None
                if not _pump(client, upstream, limit, self.requests, self._pause):
                    _reset(client)
                    _reset(upstream)
                back.join(timeout=60)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(client)
            client.close()

    def _pause(self) -> float:
        return self.delay_s if self.mode == "throttle" else 0.0

    def _slow_down(self, client: socket.socket) -> None:
        client.settimeout(5)
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data:
                chunk = client.recv(65536)
                if not chunk:
                    return
                data += chunk
            client.sendall(SLOW_DOWN)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._cut_open()


_METHODS = {b"GET", b"PUT", b"POST", b"HEAD", b"DELETE"}


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()


def _pump(
    source: socket.socket,
    sink: socket.socket,
    limit: int | None,
    lines: list[bytes] | None = None,
    pause: Callable[[], float] | None = None,
) -> bool:
    """Copy until EOF (True) or until `limit` bytes passed (False)."""
    done = 0
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            if pause is not None and (wait := pause()):
                time.sleep(wait)
            if lines is not None and data.split(b" ", 1)[0] in _METHODS:
                lines.append(data.split(b"\r\n", 1)[0])
            if limit is not None and done + len(data) > limit:
                sink.sendall(data[: limit - done])
                return False
            sink.sendall(data)
            done += len(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
    return True


@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    made: list[FaultProxy] = []

    def make(target_port: int, listener: socket.socket | None = None) -> FaultProxy:
        proxy = FaultProxy(target_port, listener)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()
