"""The web UI's run form with a file, and its nodes page, against a real daemon.

    .venv/bin/python bench/ui_forms.py [--quick]

Upload: POST /run (multipart) with an 8 MiB file until the UI's 303 (the job
accepted), 20 times (--quick: 5); baseline in the same run: RunJob with the
same file inline, called straight from Python. Nodes page: GET /nodes (one
node: a timed GetSystemStatus and ListJobPages of its active jobs), 50 times
(--quick: 20); baseline: the same two calls straight from Python.
"""

from __future__ import annotations

import http.client
import os
import time

import grpc
from common import Daemon, Report, p50, p99, parse_args, running_daemon
from ui import sign_in, start_ui

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

FILE_BYTES = 8 * 1024 * 1024
BOUNDARY = "----bench-boundary"


def csrf_of(port: int, cookie: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/jobs", headers={"Cookie": cookie})
    body = conn.getresponse().read().decode()
    conn.close()
    return body.split('data-csrf="', 1)[1].split('"', 1)[0]


def form_body(csrf: str, content: bytes) -> bytes:
    fields = {"csrf": csrf, "command": "true", "name": "bench-upload"}
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]  # fmt: skip
    head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="uploads"; '
            'filename="data.bin"\r\nContent-Type: application/octet-stream\r\n\r\n')  # fmt: skip
    return b"".join(parts) + head.encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def post_run(port: int, cookie: str, body: bytes) -> float:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("POST", "/run", body, {
        "Cookie": cookie, "Origin": f"http://127.0.0.1:{port}",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
    })  # fmt: skip
    response = conn.getresponse()
    response.read()
    assert response.status == 303, response.status
    conn.close()
    return time.perf_counter() - start


def run_job(stub: pb_grpc.JobServiceStub, content: bytes) -> float:
    start = time.perf_counter()
    upload = pb.FileUpload(path="data.bin", content=content, mode=0o644)
    stub.RunJob(pb.RunJobRequest(command="true", name="bench-grpc", uploads=[upload]))
    return time.perf_counter() - start


def get(port: int, path: str, cookie: str) -> float:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", path, headers={"Cookie": cookie})
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200 and b'data-reachable="yes"' in body, body[-1500:]
    conn.close()
    return time.perf_counter() - start


def probe(monitoring: pb_grpc.MonitoringServiceStub, jobs: pb_grpc.JobServiceStub) -> float:
    start = time.perf_counter()
    monitoring.GetSystemStatus(pb.EmptyRequest())
    request = pb.ListJobPagesRequest(statuses=["RUNNING", "PENDING"], pageSize=1000)
    list(jobs.ListJobPages(request))
    return time.perf_counter() - start


def monitoring_of(daemon: Daemon) -> pb_grpc.MonitoringServiceStub:
    channel = grpc.secure_channel(daemon.address, daemon.credentials())
    return pb_grpc.MonitoringServiceStub(channel)  # type: ignore[no-untyped-call]


def main() -> None:
    args = parse_args(__doc__ or "")
    uploads, pages = (5, 20) if args.quick else (20, 50)
    report = Report("ui forms", args.quick)
    content = os.urandom(FILE_BYTES)
    with running_daemon({"ui": {"enabled": False}}) as daemon:
        proc, port = start_ui(daemon)
        try:
            cookie = sign_in(daemon, port)
            body = form_body(csrf_of(port, cookie), content)
            stub, monitoring = daemon.jobs(), monitoring_of(daemon)
            posted, straight, shown, probed = [], [], [], []
            for _ in range(uploads):
                posted.append(post_run(port, cookie, body))
                straight.append(run_job(stub, content))
            for _ in range(pages):
                shown.append(get(port, "/nodes", cookie))
                probed.append(probe(monitoring, stub))
        except AssertionError:
            print((daemon.root.parent / "ui.log").read_text()[-3000:])
            raise
        finally:
            proc.terminate()
            proc.wait()
    report.figures["run form, 8 MiB file, p50 ms"] = p50(posted) * 1000
    report.figures["run form, 8 MiB file, p99 ms"] = p99(posted) * 1000
    report.baselines["RunJob, same file, p50 ms"] = p50(straight) * 1000
    report.baselines["RunJob, same file, p99 ms"] = p99(straight) * 1000
    report.figures["nodes page p50 ms"] = p50(shown) * 1000
    report.figures["nodes page p99 ms"] = p99(shown) * 1000
    report.baselines["the probe's calls p50 ms"] = p50(probed) * 1000
    report.baselines["the probe's calls p99 ms"] = p99(probed) * 1000
    report.notes.append(f"{uploads} uploads of {FILE_BYTES} bytes; {pages} nodes pages")
    report.emit()


if __name__ == "__main__":
    main()
