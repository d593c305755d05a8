"""Large uploads: rnx's memory and rate, and the daemon's memory after them.

    .venv/bin/python bench/upload_stream.py [--quick]

rnx: `rnx run --upload FILE true` with a 2 GB file (--quick: 512 MB), streamed
through UploadFiles; its wall time (until RunJob answers) and its peak RSS
(the child's rusage). Baselines, same run and file: `cat FILE > /dev/null`
(the page cache), and a plain gRPC stream of the same bytes to UploadFiles
from Python (1 MiB chunks, no digest, no progress) followed by the same
RunJob naming the session (both sides include the daemon copying the file
into the workspace; the stream alone is shown too). Medians of TRIALS.
Daemon: RSS before and after five 200 MB uploads sent inside RunJob.
Targets: rnx peak RSS <= 64 MB; rnx rate >= 0.7 x the plain stream's; daemon
RSS after the five uploads within 20 MB of before.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
import psutil
from common import Daemon, Report, compile_package, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

TRIALS = 3
CHUNK = 1 << 20
MB = 1e6


def make_file(path: Path, size: int) -> None:
    block = os.urandom(CHUNK)
    with path.open("wb") as out:
        for _ in range(size // CHUNK):
            out.write(block)


def rnx_upload(daemon: Daemon, path: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `rnx run --upload`."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        daemon.rnx_argv("run", "--upload", str(path), "true"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"rnx failed: {proc.stderr.read() if proc.stderr else b''!r}")
    return elapsed, usage.ru_maxrss * 1024 / MB


def cat_s(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def plain_stream_s(daemon: Daemon, path: Path) -> tuple[float, float]:
    """(seconds for the stream alone, seconds with the RunJob after it)."""
    stub = daemon.jobs()
    size = path.stat().st_size
    digest = hashlib.sha256(path.read_bytes()).hexdigest()  # not timed
    started = time.perf_counter()
    session = stub.UploadFiles(iter([pb.UploadChunk(totalSize=size)])).sessionId

    def chunks():  # type: ignore[no-untyped-def]
        yield pb.UploadChunk(sessionId=session)
        with path.open("rb") as file:
            offset = 0
            while data := file.read(CHUNK):
                yield pb.UploadChunk(path="f", offset=offset, data=data)
                offset += len(data)
        yield pb.UploadChunk(path="f", offset=offset, sha256=digest)

    stub.UploadFiles(chunks())
    streamed = time.perf_counter() - started
    stub.RunJob(pb.RunJobRequest(command="true", uploadSession=session), timeout=600)
    return streamed, time.perf_counter() - started


def daemon_rss_after_uploads(daemon: Daemon) -> tuple[float, float]:
    creds = daemon.credentials()
    options = [("grpc.max_send_message_length", 512 << 20)]
    stub = pb_grpc.JobServiceStub(grpc.secure_channel(daemon.address, creds, options=options))  # type: ignore[no-untyped-call]
    stub.RunJob(pb.RunJobRequest(command="true"))
    before = psutil.Process(daemon.proc.pid).memory_info().rss / MB
    content = os.urandom(1 << 20) * 200
    for i in range(5):
        upload = pb.FileUpload(path=f"d{i}", content=content, mode=0o644)
        stub.RunJob(pb.RunJobRequest(command="true", uploads=[upload]), timeout=120)
    del content
    time.sleep(1.0)
    return before, psutil.Process(daemon.proc.pid).memory_info().rss / MB


def main() -> None:
    args = parse_args(__doc__ or "")
    report = Report("upload_stream", args.quick)
    compile_package(report)
    size = (512 if args.quick else 2048) * CHUNK
    with (
        running_daemon(maxUploadSize="3GB") as daemon,
        tempfile.TemporaryDirectory(dir=daemon.root) as tmp,
    ):
        path = Path(tmp) / "big.bin"
        make_file(path, size)
        cat_s(path)  # warm the page cache
        rnx = [rnx_upload(daemon, path) for _ in range(TRIALS)]
        plain = [plain_stream_s(daemon, path) for _ in range(TRIALS)]
        cats = [cat_s(path) for _ in range(TRIALS)]
        seconds = statistics.median(r[0] for r in rnx)
        report.figures["rnx upload s"] = seconds
        report.figures["rnx upload MB/s"] = size / MB / seconds
        report.figures["rnx peak RSS MB"] = max(r[1] for r in rnx)
        report.baselines["plain gRPC stream MB/s"] = (
            size / MB / statistics.median(p[0] for p in plain)
        )
        report.baselines["plain stream + RunJob MB/s"] = (
            size / MB / statistics.median(p[1] for p in plain)
        )
        report.baselines["cat > /dev/null MB/s"] = size / MB / statistics.median(cats)
        before, after = daemon_rss_after_uploads(daemon)
        report.figures["daemon RSS before MB"] = before
        report.figures["daemon RSS after 5x200MB MB"] = after
    ratio = report.figures["rnx upload MB/s"] / report.baselines["plain stream + RunJob MB/s"]
    report.figures["rnx / plain stream"] = ratio
    report.check("rnx peak RSS", report.figures["rnx peak RSS MB"] <= 64, "<= 64 MB")
    report.check("rnx rate", ratio >= 0.7, ">= 0.7 x plain gRPC stream + RunJob")
    report.check("daemon RSS", after - before <= 20, "within 20 MB after 5 x 200 MB")
    report.emit()


if __name__ == "__main__":
    main()
