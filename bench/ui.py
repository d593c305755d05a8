"""The web UI (`joblet ui`) against a real daemon: the jobs page's time to
first byte with 10,000 jobs, a job's printed line to text in the page's DOM,
the UI process's idle memory and the size of its scripts and styles.

    .venv/bin/python bench/ui.py [--quick]

10,000 jobs (--quick: 2,000) are scheduled an hour ahead (real records, none
runs). TTFB: 200 GET /jobs (--quick: 50) of a signed-in session, each a fresh
connection; baselines in the same run: GET /login (the web stack, no gRPC) and
the first page of ListJobPages called straight from Python (the upstream's share).
Sorted: GET /jobs?sort=name&order=desc (runs / 10), a screen cut from every job
(ListJobPages has no order but creation's); baseline: all of them through
ListJobPages straight from Python.
Print to DOM: a job prints its clock (date +%s.%N) every 50 ms for 10 s; a
headless Chromium on the job page records when each line's text lands in the
DOM; baseline: the same lines read straight from GetJobLogs. RSS: the UI's
VmRSS after those runs and 6 s idle; baseline: a bare interpreter that imported
aiohttp, Jinja2 and grpc. Targets (issue): TTFB p99 <= 50 ms, print to DOM
p99 <= 250 ms, idle RSS <= 60 MB, JS + CSS <= 150 KB gzipped.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from common import Daemon, Report, free_port, p50, p99, parse_args, running_daemon

import joblet.ui
from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

CALLERS = 20
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip
PRINTER = "sleep 4; for i in $(seq 1 200); do date +%s.%N; sleep 0.05; done"
BARE_RSS = (
    "import aiohttp.web, jinja2, grpc, time, sys; print('ready', flush=True); "
    "time.sleep(3); print(open('/proc/self/status').read())"
)


async def submit(daemon: Daemon, total: int) -> None:
    left = [total]

    async def caller(stub: pb_grpc.JobServiceStub) -> None:
        while left[0] > 0:
            left[0] -= 1
            await stub.RunJob(pb.RunJobRequest(command="true", args=["x"], schedule="1h"))

    async with daemon.aio_channel() as channel:
        stub = pb_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]
        await asyncio.gather(*(caller(stub) for _ in range(CALLERS)))


def start_ui(daemon: Daemon) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [sys.executable, "-m", "joblet.daemon.main", "ui", "--config",
            str(daemon.config_path), "--listen", f"127.0.0.1:{port}"]  # fmt: skip
    log = (daemon.root.parent / "ui.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    raise RuntimeError("joblet ui did not listen")


def sign_in(daemon: Daemon, port: int) -> str:
    token = subprocess.run(
        [sys.executable, "-m", "joblet.daemon.main", "ui", "token", "--config",
         str(daemon.config_path), "--role", "admin", "--name", "bench"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Origin": f"http://127.0.0.1:{port}",
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    conn.request("POST", "/login", urlencode({"token": token}), headers)
    response = conn.getresponse()
    response.read()
    assert response.status == 303, response.status
    return str(response.getheader("Set-Cookie")).split(";", 1)[0]


def ttfb(port: int, path: str, cookie: str) -> float:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", path, headers={"Cookie": cookie})
    response = conn.getresponse()  # returns once the status line and headers are in
    first = time.perf_counter() - start
    body = response.read()
    assert response.status == 200 and body, response.status
    conn.close()
    return first


def first_page(stub: pb_grpc.JobServiceStub) -> float:
    """The call the jobs page makes (50 jobs, and whether more match), alone."""
    start = time.perf_counter()
    pages = list(stub.ListJobPages(pb.ListJobPagesRequest(pageSize=51, limit=50)))
    assert sum(len(p.jobs) for p in pages) == 50 and pages[-1].more
    return time.perf_counter() - start


def all_jobs(stub: pb_grpc.JobServiceStub, total: int) -> float:
    """What a sorted screen fetches: every job, in the largest pages."""
    start = time.perf_counter()
    pages = list(stub.ListJobPages(pb.ListJobPagesRequest(pageSize=1000)))
    assert sum(len(p.jobs) for p in pages) >= total
    return time.perf_counter() - start


def rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


def print_to_dom(daemon: Daemon, port: int, cookie: str) -> tuple[list[float], list[float]]:
    """(browser, straight gRPC) delays from a line's clock to its arrival."""
    from playwright.sync_api import sync_playwright

    stub = daemon.jobs()
    job = stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", PRINTER])).jobUuid
    grpc_delays: list[float] = []

    def follow_grpc() -> None:
        for chunk in stub.GetJobLogs(pb.GetJobLogsReq(uuid=job)):
            now = time.time()
            grpc_delays.extend(now - float(x) for x in chunk.payload.decode().split())

    import threading

    reader = threading.Thread(target=follow_grpc)
    reader.start()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        # bypass_csp: the measuring script below is inline, the pages' own CSP forbids it
        context = browser.new_context(bypass_csp=True)
        name, value = cookie.split("=", 1)
        context.add_cookies([{"name": name, "value": value, "url": f"http://127.0.0.1:{port}"}])
        context.add_init_script("""
          window.__arrivals = [];
          new MutationObserver(function (records) {
            var now = Date.now() / 1000;
            records.forEach(function (r) { r.addedNodes.forEach(function (n) {
              if (r.target.id !== 'log') { return; }
              (n.textContent || '').split('\\n').forEach(function (l) {
                if (l.trim()) { window.__arrivals.push([parseFloat(l), now]); } }); }); });
          }).observe(document, {childList: true, subtree: true});
        """)
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/jobs/{job}")
        page.wait_for_selector("#job-status td", timeout=30_000)
        ready = time.time()  # lines printed before the page was up are a backlog, not a delay
        page.wait_for_selector("#log-state[data-ended]", state="attached", timeout=60_000)
        arrivals = page.evaluate("window.__arrivals")
        dom = [now - printed for printed, now in arrivals if printed >= ready]
        browser.close()
    reader.join()
    return dom, grpc_delays


def main() -> None:
    args = parse_args(__doc__ or "")
    jobs, runs = (2_000, 50) if args.quick else (10_000, 200)
    report = Report("ui", args.quick)
    with running_daemon({"ui": {"enabled": False}}) as daemon:
        asyncio.run(submit(daemon, jobs))
        proc, port = start_ui(daemon)
        try:
            cookie = sign_in(daemon, port)
            stub = daemon.jobs()
            pages, logins, grpc_pages = [], [], []
            for _ in range(runs):
                pages.append(ttfb(port, "/jobs", cookie))
                logins.append(ttfb(port, "/login", ""))
                grpc_pages.append(first_page(stub))
            sorted_pages, every_job = [], []
            for _ in range(max(runs // 10, 5)):
                sorted_pages.append(ttfb(port, "/jobs?sort=name&order=desc", cookie))
                every_job.append(all_jobs(stub, jobs))
            dom, straight = print_to_dom(daemon, port, cookie)
            time.sleep(6)  # idle: past the UI's heap trim (every 5 s)
            ui_rss = rss_kb(proc.pid) / 1024
        finally:
            proc.terminate()
            proc.wait()
    bare = subprocess.run([sys.executable, "-c", BARE_RSS], capture_output=True, text=True,
                          check=True)  # fmt: skip
    bare_rss = int(bare.stdout.split("VmRSS:")[1].split()[0]) / 1024
    static = Path(joblet.ui.__file__).parent / "static"
    gz = sum(len(gzip.compress(p.read_bytes(), 9)) for p in static.rglob("*")
             if p.suffix in (".js", ".css")) / 1024  # fmt: skip
    report.figures["jobs page TTFB p50 ms"] = p50(pages) * 1000
    report.figures["jobs page TTFB p99 ms"] = p99(pages) * 1000
    report.baselines["login page TTFB p99 ms"] = p99(logins) * 1000
    report.baselines["ListJobPages first page p99 ms"] = p99(grpc_pages) * 1000
    report.figures["sorted jobs page TTFB p50 ms"] = p50(sorted_pages) * 1000
    report.figures["sorted jobs page TTFB p99 ms"] = p99(sorted_pages) * 1000
    report.baselines["ListJobPages, every job p99 ms"] = p99(every_job) * 1000
    report.figures["print to DOM p50 ms"] = p50(dom) * 1000
    report.figures["print to DOM p99 ms"] = p99(dom) * 1000
    report.baselines["print to GetJobLogs p99 ms"] = p99(straight) * 1000
    report.figures["UI idle RSS MB"] = ui_rss
    report.baselines["bare aiohttp+jinja2+grpc RSS MB"] = bare_rss
    report.figures["JS+CSS gzipped KB"] = gz
    report.notes.append(f"{jobs} jobs; {runs} requests each; {len(dom)} lines in the DOM")
    report.check("TTFB p99", report.figures["jobs page TTFB p99 ms"] <= 50, "<= 50 ms")
    report.check("print to DOM p99", report.figures["print to DOM p99 ms"] <= 250, "<= 250 ms")
    report.check("idle RSS", ui_rss <= 60, "<= 60 MB")
    report.check("JS+CSS gzipped", gz <= 150, "<= 150 KB")
    report.emit()


if __name__ == "__main__":
    main()
