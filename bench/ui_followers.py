"""Fifty browsers following one job through one upstream stream: the web UI
(`joblet ui`) fans one GetJobLogs stream out to every follower of a job page.

    .venv/bin/python bench/ui_followers.py [--quick]

A real daemon, `joblet ui` alone on loopback (as bench/ui.py starts it), a
signed-in session. Each phase runs a fresh job that prints its line number,
its clock (date +%s.%N) and 8 KB of padding every 50 ms, 200 lines (--quick:
100); the padding gives the slow follower a large backlog (~650 KB in 5 s),
and ss shows where it waited (the sockets' Recv-Q and Send-Q). Followers are SSE clients on
the job page's one event stream (/jobs/ID/events, aiohttp sessions sending the
session cookie); a line's delay is its clock to its arrival in the follower,
over every follower, for lines printed after all had connected.
  1 follower           baseline: the same lines read straight from GetJobLogs
  50 followers         every follower gets every line once (none missed or
                       repeated); the UI opened one upstream stream for the job
  50 + 1 slow follower the slow one reads nothing for 5 s (a blocking socket
                       with a 4 KB receive buffer, not read); the others' p99
                       must stay as without it, and the slow one still gets
                       every line once
The upstream count is the UI's own log ("upstream stream opened: log:NODE:ID",
one line per GetJobLogs it opens): the daemon's audit log records mutating and
refused calls only, not reads such as GetJobLogs.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp
from common import Daemon, Report, p50, p99, parse_args, running_daemon
from ui import sign_in, start_ui

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

FOLLOWERS = 50
LEAD_S = 6  # the job's wait before its first line: every follower connects first
PAD = 8000
SLOW_S = 5.0
SLOW_RCVBUF = 4096


def printer(lines: int) -> str:
    return (
        f"pad=$(head -c {PAD} /dev/zero | tr '\\0' x); sleep {LEAD_S}; "
        f'for i in $(seq 1 {lines}); do echo "$i $(date +%s.%N) $pad"; sleep 0.05; done'
    )


@dataclass
class Follower:
    """What one follower received: (line number, printed, arrived) each line."""

    lines: list[tuple[int, float, float]] = field(default_factory=list)
    ready: float = 0.0  # when its stream's first event came

    def take(self, text: str, now: float) -> None:
        for line in text.split("\n"):
            parts = line.split(" ", 2)
            if len(parts) >= 2 and parts[0].isdigit():
                self.lines.append((int(parts[0]), float(parts[1]), now))

    def problems(self, total: int) -> str:
        numbers = [n for n, _, _ in self.lines]
        missed = set(range(1, total + 1)) - set(numbers)
        repeated = len(numbers) - len(set(numbers))
        return f"{len(missed)} missed, {repeated} repeated" if missed or repeated else ""


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) from text/event-stream lines (without their newline)."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data or event != "message":
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])


async def follow(session: aiohttp.ClientSession, url: str, follower: Follower) -> None:
    headers = {"Accept": "text/event-stream"}
    async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=None)) as r:
        assert r.status == 200, r.status
        event, data = "message", list[str]()
        async for raw in r.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif not line:
                if not follower.ready:
                    follower.ready = time.time()
                if event == "log":
                    follower.take("\n".join(data), time.time())
                elif event in ("end", "done"):
                    return
                event, data = "message", []


def slow_follow(port: int, path: str, cookie: str, follower: Follower, queued: list[str], *,
                resume_at: float) -> None:  # fmt: skip
    """A follower that reads nothing until `resume_at`: a blocking socket with
    a small receive buffer. HTTP/1.0, so the body is the stream itself."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
        sock.connect(("127.0.0.1", port))
        request = (f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n"
                   "Accept: text/event-stream\r\n\r\n")  # fmt: skip
        sock.sendall(request.encode())
        follower.ready = time.time()
        time.sleep(max(resume_at - time.time(), 0))
        local = sock.getsockname()[1]
        queued.append(subprocess.run(
            ["ss", "-tnH", "state", "established", f"( sport = :{port} and dport = :{local} )"
             f" or ( sport = :{local} and dport = :{port} )"],
            capture_output=True, text=True, check=False).stdout)  # fmt: skip
        reader = sock.makefile("rb")

        def lines() -> Iterator[str]:
            for raw in reader:
                yield raw.decode().rstrip("\r\n")

        stream = lines()
        for line in stream:  # the response's head
            if not line:
                break
        for event, data in sse_events(stream):
            if event == "log":
                follower.take(data, time.time())
            elif event in ("end", "done"):
                return


async def straight(daemon: Daemon, job: str, follower: Follower) -> None:
    async with daemon.aio_channel() as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        pending = b""
        async for chunk in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job)):
            now = time.time()
            pending += chunk.payload
            whole, _, pending = pending.rpartition(b"\n")
            follower.take(whole.decode(), now)


@dataclass
class Phase:
    followers: list[Follower]
    grpc: Follower
    slow: Follower | None
    queued: list[str]
    started: float
    job: str

    def delays(self, who: list[Follower]) -> list[float]:
        after = max(f.ready for f in who)
        return [got - printed for f in who for _, printed, got in f.lines if printed >= after]


async def phase(daemon: Daemon, port: int, cookie: str, count: int, *, lines: int,
                slow: bool) -> Phase:  # fmt: skip
    job = daemon.jobs().RunJob(pb.RunJobRequest(command="sh", args=["-c", printer(lines)]))
    started = time.time()
    followers = [Follower() for _ in range(count)]
    grpc_follower, slow_follower, queued = Follower(), Follower() if slow else None, list[str]()
    url = f"http://127.0.0.1:{port}/jobs/{job.jobUuid}/events"
    sessions = [aiohttp.ClientSession(headers={"Cookie": cookie}) for _ in range(count)]
    try:
        tasks = [follow(s, url, f) for s, f in zip(sessions, followers, strict=True)]
        tasks.append(straight(daemon, job.jobUuid, grpc_follower))
        if slow_follower is not None:
            path = f"/jobs/{job.jobUuid}/events"
            resume_at = started + LEAD_S + SLOW_S  # SLOW_S into the printing
            args = (port, path, cookie, slow_follower, queued)
            tasks.append(asyncio.to_thread(slow_follow, *args, resume_at=resume_at))
        await asyncio.wait_for(asyncio.gather(*tasks), LEAD_S + lines * 0.2 + 120)
    finally:
        for s in sessions:
            await s.close()
    assert all(f.ready and f.ready < started + LEAD_S for f in followers), "late followers"
    return Phase(followers, grpc_follower, slow_follower, queued, started, job.jobUuid)


def upstreams(daemon: Daemon, job: str) -> int:
    """GetJobLogs streams the UI opened for `job`, from its log."""
    text = (daemon.root.parent / "ui.log").read_text(errors="replace")
    return sum(1 for line in text.splitlines()
               if "upstream stream opened: log:" in line and line.endswith(f":{job}"))  # fmt: skip


def main() -> None:
    args = parse_args(__doc__ or "")
    lines = 100 if args.quick else 200
    report = Report("ui_followers", args.quick)
    with running_daemon({"ui": {"enabled": False}}) as daemon:
        proc, port = start_ui(daemon)
        try:
            cookie = sign_in(daemon, port)
            one = asyncio.run(phase(daemon, port, cookie, 1, lines=lines, slow=False))
            many = asyncio.run(phase(daemon, port, cookie, FOLLOWERS, lines=lines, slow=False))
            with_slow = asyncio.run(phase(daemon, port, cookie, FOLLOWERS, lines=lines, slow=True))
            phases = (("1", one), ("50", many), ("50+slow", with_slow))
            opened = {name: upstreams(daemon, p.job) for name, p in phases}
        finally:
            proc.terminate()
            proc.wait()
    everyone = [*one.followers, *many.followers, *with_slow.followers]
    problems = [f.problems(lines) for f in everyone if f.problems(lines)]
    assert with_slow.slow is not None
    slow_problem = with_slow.slow.problems(lines)
    resumed = with_slow.started + LEAD_S + SLOW_S
    unread = sum(PAD + 40 for _, printed, _ in with_slow.slow.lines if printed < resumed)
    slow_delays = [got - printed for _, printed, got in with_slow.slow.lines]
    many_delays = many.delays(many.followers)
    others = with_slow.delays(with_slow.followers)
    report.figures["50 followers p50 ms"] = p50(many_delays) * 1000
    report.figures["50 followers p99 ms"] = p99(many_delays) * 1000
    report.figures["50 + slow: others p50 ms"] = p50(others) * 1000
    report.figures["50 + slow: others p99 ms"] = p99(others) * 1000
    report.figures["slow follower max delay ms"] = max(slow_delays) * 1000
    report.figures["upstreams for the 50"] = opened["50"]
    report.figures["upstreams for the 50+slow"] = opened["50+slow"]
    report.baselines["1 follower p50 ms"] = p50(one.delays(one.followers)) * 1000
    report.baselines["1 follower p99 ms"] = p99(one.delays(one.followers)) * 1000
    report.baselines["GetJobLogs (1) p99 ms"] = p99(one.delays([one.grpc])) * 1000
    report.baselines["GetJobLogs (50) p99 ms"] = p99(many.delays([many.grpc])) * 1000
    report.notes.append(f"{lines} lines of {PAD} B padding each, every 50 ms, per phase")
    report.notes.append(f"lines each follower got: missed/repeated: {problems or 'none'}; "
                        f"slow follower: {slow_problem or 'none'}")  # fmt: skip
    sockets = " | ".join(" ".join(q.split()[:2]) for q in with_slow.queued[0].splitlines())
    report.notes.append(f"slow follower: ~{unread // 1024} KB printed for it while it read "
                        f"nothing; its sockets then (Recv-Q Send-Q): {sockets}")  # fmt: skip
    report.notes.append(f"upstream GetJobLogs streams the UI opened per job: {opened}")
    report.check("one upstream for 50 followers", opened["50"] == 1, "== 1")
    report.check("no line missed or repeated", not problems and not slow_problem, "none")
    report.check(
        "slow follower does not delay the others",
        p99(others) <= max(2 * p99(many_delays), p99(many_delays) + 0.05),
        "others' p99 <= max(2x, +50 ms) of the 50 alone",
    )
    report.emit()


if __name__ == "__main__":
    main()
