"""A real daemon with the web UI enabled and a `joblet ui` of its own on the
host's loopback (the UI run alone against a node, as an operator may), and a
small HTTP client that sets every header itself (Host, Origin, Cookie)."""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from .conftest import RunningDaemon, launch_daemon


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class UiProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_ui(daemon: RunningDaemon, *extra: str, config: Path | None = None) -> UiProcess:
    port = free_port()
    log_path = daemon.root.parent / f"ui-{port}.log"
    config = config or daemon.config_path
    argv = [sys.executable, "-m", "joblet.daemon.main", "ui", "--config", str(config),
            "--listen", f"127.0.0.1:{port}", *extra]  # fmt: skip
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    ui = UiProcess(proc, port, log_path)
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return ui
        if proc.poll() is not None or time.monotonic() > deadline:
            ui.stop()
            raise RuntimeError(f"joblet ui did not listen:\n{log_path.read_text()}")
        time.sleep(0.05)


@contextlib.contextmanager
def ui_world(tmp: Path) -> Iterator[tuple[RunningDaemon, UiProcess]]:
    # a metric sample a second, so charts gain points within a test
    daemon = launch_daemon(tmp, {"ui": {"enabled": True}, "metrics": {"interval": 1}})
    try:
        ui = start_ui(daemon)
        try:
            yield daemon, ui
        finally:
            ui.stop()
    finally:
        daemon.stop()


def mint(daemon: RunningDaemon, role: str, ttl: str = "60s") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "joblet.daemon.main", "ui", "token", "--config",
         str(daemon.config_path), "--role", role, "--ttl", ttl, "--name", f"test-{role}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: str

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


@dataclass
class Browser:
    """Speaks HTTP to the UI like a browser of origin `origin` would."""

    ui: UiProcess
    cookie: str = ""
    csrf: str = ""
    set_cookies: list[str] = field(default_factory=list)
    login_cookies: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> Reply:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.ui.port, timeout=30)
        sent = {"Host": f"127.0.0.1:{self.ui.port}"}
        if method == "POST":
            sent["Origin"] = self.ui.origin
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookie:
            sent["Cookie"] = self.cookie
        sent.update(headers or {})
        sent = {k: v for k, v in sent.items() if v is not None}
        body = raw if raw is not None else urlencode(form or {}) if method == "POST" else None
        conn.request(method, path, body, sent)
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
        self.set_cookies = response.headers.get_all("Set-Cookie") or []
        return Reply(response.status, response.headers, body)

    def get(self, path: str, **kw: dict[str, str]) -> Reply:
        return self.request("GET", path, **kw)  # type: ignore[arg-type]

    def post(self, path: str, form: dict[str, str] | None = None, *, csrf: bool = True,
             headers: dict[str, str] | None = None) -> Reply:  # fmt: skip
        fields = dict(form or {})
        if csrf:
            fields.setdefault("csrf", self.csrf)
        return self.request("POST", path, fields, headers)

    def sign_in(self, token: str) -> Reply:
        reply = self.request("POST", "/login", {"token": token})
        self.login_cookies = list(self.set_cookies)
        for cookie in self.login_cookies:
            self.cookie = cookie.split(";", 1)[0]
        if reply.status == 303:
            page = self.get("/jobs")
            found = re.search(r'data-csrf="([^"]+)"', page.body)
            self.csrf = found.group(1) if found else ""
        return reply


def sse_events(ui: UiProcess, path: str, cookie: str, *, last_event_id: str = "",
               until: str = "end", limit: int = 1000,
               stop_after_log: int | None = None,
               done: Callable[[tuple[str, str, str]], bool] | None = None,
               ) -> list[tuple[str, str, str]]:  # fmt: skip
    """(event, id, data) of an event stream until an `until` event, after
    `stop_after_log` log events (like a dropped connection) or an event `done`
    holds for."""
    conn = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=30)
    headers = {"Host": f"127.0.0.1:{ui.port}", "Cookie": cookie, "Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    assert response.status == 200, response.read()
    events: list[tuple[str, str, str]] = []
    event, event_id, data = "message", "", []
    logs = 0
    try:
        while len(events) < limit:
            line = response.readline().decode()
            if not line:
                break
            line = line.rstrip("\n")
            if line == "":
                if data or event != "message":
                    events.append((event, event_id, "\n".join(data)))
                    logs += event == "log"
                    if event == until or (stop_after_log is not None and logs >= stop_after_log):
                        break
                    if done is not None and done(events[-1]):
                        break
                event, event_id, data = "message", "", []
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                data.append(line[6:])
    finally:
        conn.close()
    return events


def multipart(fields: dict[str, str],
              files: list[tuple[str, str, bytes]]) -> tuple[dict[str, str], bytes]:  # fmt: skip
    """(headers, body) of a multipart/form-data POST: text fields, then
    (field, file name, content) files, as a browser's file inputs send them."""
    boundary = "----joblet-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    for name, filename, content in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body
