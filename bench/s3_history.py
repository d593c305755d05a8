"""persist with the s3 backend: upload throughput, first byte from the bucket, RSS.

    .venv/bin/python bench/s3_history.py [--quick]

A moto_server on loopback is the store. N MB of log text (100, --quick 25) go
into a persist with the local backend through its IPC, as a finished job;
that persist stops, and one with `persist.backend: s3` (keepLocal 0) starts
on the same root and archives the job.

Upload: the job's stored (compressed) bytes over the time persist spent
uploading them (its log line: hashing, multipart uploads of 8 MiB parts and
the confirming HEAD of each segment); also the wall time from the s3 persist
answering queries to the manifest being in the bucket (its start, the scan
for unfinished uploads and the manifest included). Baseline, same run: boto3
in this process uploading the same segment files with the same transfer
settings, file after file, and (a stricter one) 4 files at a time as persist
uploads a job's segments; medians of 3 each. Target: >= 0.8 of the first.

RSS: the s3 persist's resident memory, sampled every 20 ms while it uploads;
the peak. Target: <= 100 MB.

First byte: once the local copy is gone, the log is queried from the start
200 times over one channel; time to the first streamed record (manifest GET,
first ranged GET, inflate). Baseline: the same query of the same log while it
was local. Target: p99 <= 100 ms.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import psutil
import yaml
from boto3.s3.transfer import TransferConfig
from common import Report, free_port, p50, p99, parse_args
from persist_ingest import ingest, make_text

from joblet.persist.archive.archiver import UPLOAD_THREADS
from joblet.persist.client import PersistQueryClient

QUERIES = 200
RUNS = 3
NODE = "bench-node"
PART = 8 * 1024 * 1024


def start_moto(port: int) -> subprocess.Popen[bytes]:
    binary = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(binary if binary.exists() else shutil.which("moto_server")), "-H", "127.0.0.1",
         "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    client = s3_client(port)
    while True:
        try:
            client.list_buckets()
            return proc
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def s3_client(port: int) -> object:
    return boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
    )  # fmt: skip


def start_persist(root: Path, persist: dict[str, object], log_name: str) -> subprocess.Popen[bytes]:
    config = root / "config.yml"
    body = {"joblet": {"root": str(root)}, "server": {"nodeId": NODE}, "persist": persist}
    config.write_text(yaml.safe_dump(body))
    socket_path = root / "run" / "persist-grpc.sock"
    socket_path.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "joblet.persist", "--config", str(config)],
        stderr=(root / log_name).open("wb"),
    )
    deadline = time.monotonic() + 15
    while not socket_path.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError((root / log_name).read_text())
        time.sleep(0.01)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


async def first_bytes(root: Path, job: str) -> list[float]:
    latencies = []
    async with PersistQueryClient(root / "run" / "persist-grpc.sock") as query:
        for _ in range(QUERIES):
            start = time.perf_counter()
            stream = query.query_logs(job)
            await anext(stream)
            latencies.append((time.perf_counter() - start) * 1000)
            await stream.aclose()
    return latencies


def peak_rss(pid: int, done: threading.Event) -> list[int]:
    peak = [0]

    def sample() -> None:
        proc = psutil.Process(pid)
        while not done.is_set():
            peak[0] = max(peak[0], int(proc.memory_info().rss))
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    return peak


def wait_key(client: object, bucket: str, key: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = client.list_objects_v2(Bucket=bucket, Prefix=key)  # type: ignore[attr-defined]
        if found.get("KeyCount"):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{key} did not appear")
        time.sleep(0.01)


def direct_upload(client: object, bucket: str, files: list[Path], threads: int = 1) -> float:
    """boto3 alone: seconds to upload the files with persist's transfer
    settings, `threads` files at a time."""
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=4)

    def upload(path: Path) -> None:
        client.upload_file(  # type: ignore[attr-defined]
            str(path), bucket, f"direct/{uuid.uuid4()}/{path.name}", Config=config,
            ExtraArgs={"ChecksumAlgorithm": "SHA256"},
        )  # fmt: skip

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(upload, files))
    return time.perf_counter() - start


def copy_files(files: list[Path], target: Path) -> list[Path]:
    """The segments for the direct upload (persist drops its own)."""
    target.mkdir()
    for path in files:
        shutil.copyfile(path, target / path.name)
    return [target / path.name for path in files]


def wait_gone(path: Path) -> None:
    """Until persist dropped its local copy (keepLocal 0)."""
    deadline = time.monotonic() + 60
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def s3_settings(bucket: str, port: int) -> dict[str, str]:
    return {
        "bucket": bucket, "prefix": "bench", "endpointUrl": f"http://127.0.0.1:{port}",
        "accessKeyId": "bench", "secretAccessKey": "bench", "keepLocal": "0s",
        "uploadInterval": "50ms",
    }  # fmt: skip


def direct_uploads(client: object, bucket: str, files: list[Path]) -> tuple[float, float]:
    """Median seconds of boto3 uploading the files one after the other, and
    as many at a time as persist does."""
    one = statistics.median(direct_upload(client, bucket, files) for _ in range(RUNS))
    many = statistics.median(
        direct_upload(client, bucket, files, UPLOAD_THREADS) for _ in range(RUNS)
    )
    return one, many


def clone_job(root: Path, job: str, copies: int) -> None:
    """More finished jobs with the same bytes: archives to take the median of,
    as of the baseline's runs."""
    for _ in range(copies):
        for kind in ("logs", "metrics"):
            if (root / kind / job).is_dir():
                shutil.copytree(root / kind / job, root / kind / str(uuid.uuid4()))


def wait_objects(client: object, bucket: str, count: int) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        found = client.list_objects_v2(Bucket=bucket, Prefix="bench/")  # type: ignore[attr-defined]
        if found.get("KeyCount", 0) >= count:
            return
        time.sleep(0.05)
    raise RuntimeError("the archives did not finish")


def uploaded_seconds(log: Path) -> list[float]:
    found = [float(t) for t in re.findall(r"bytes uploaded in ([0-9.]+) s", log.read_text())]
    if not found:
        raise RuntimeError(f"no upload line in {log}")
    return found


def main() -> None:
    args = parse_args(__doc__ or "")
    size = (25 if args.quick else 100) * 10**6
    report = Report("s3_history", args.quick)
    measure(report, size)
    report.emit()


def measure(report: Report, size: int) -> None:
    port = free_port()
    moto = start_moto(port)
    client = s3_client(port)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    job = str(uuid.uuid4())
    s3 = s3_settings(bucket, port)
    try:
        with tempfile.TemporaryDirectory(prefix="s3-history-bench-") as tmp:
            root = Path(tmp)
            local = start_persist(root, {}, "persist-local.log")
            try:
                asyncio.run(ingest(root, job, make_text(size)))
                local_first = asyncio.run(first_bytes(root, job))
            finally:
                stop(local)
            files = sorted((root / "logs" / job).glob("seg-*.zst"))
            stored = sum(p.stat().st_size for p in files)
            clone_job(root, job, RUNS - 1)
            copies = copy_files(files, root / "copy")
            archived = start_persist(root, {"backend": "s3", "s3": s3}, "persist-s3.log")
            try:
                started = time.perf_counter()
                done = threading.Event()
                peak = peak_rss(archived.pid, done)
                wait_key(client, bucket, f"bench/{NODE}/{job}/manifest.json")
                upload_s = time.perf_counter() - started
                wait_objects(client, bucket, RUNS * (len(files) + 1))
                done.set()
                wait_gone(root / "logs" / job)
                remote_first = asyncio.run(first_bytes(root, job))
            finally:
                stop(archived)
            spent_s = statistics.median(uploaded_seconds(root / "persist-s3.log"))
            direct_s, parallel_s = direct_uploads(client, bucket, copies)
    finally:
        moto.terminate()
        moto.wait(10)
    rate, direct, parallel = (stored / t / 1e6 for t in (spent_s, direct_s, parallel_s))
    report.figures = {
        "log_mb": size / 1e6,
        "stored_mb": stored / 1e6,
        "segments": float(len(files)),
        "upload_mb_per_s": rate,
        "upload_ratio_to_boto3": rate / direct,
        "upload_ratio_to_boto3_4_files_at_once": rate / parallel,
        "start_to_manifest_s": upload_s,
        "persist_peak_rss_mb": peak[0] / 1e6,
        "first_byte_s3_p50_ms": p50(remote_first),
        "first_byte_s3_p99_ms": p99(remote_first),
    }
    report.baselines = {
        "boto3_direct_mb_per_s": direct,
        "boto3_direct_4_files_at_once_mb_per_s": parallel,
        "first_byte_local_p50_ms": p50(local_first),
        "first_byte_local_p99_ms": p99(local_first),
    }
    report.check("upload_ratio", rate / direct >= 0.8, ">= 0.8 of boto3 direct")
    report.check("persist_rss", peak[0] <= 100e6, "<= 100 MB")
    report.check("first_byte_s3_p99", p99(remote_first) <= 100, "<= 100 ms")
    report.notes.append(f"medians of {RUNS} archives and {RUNS} direct uploads")


if __name__ == "__main__":
    main()
