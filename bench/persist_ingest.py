"""persist: ingest rate through the IPC to disk, and historical query latency.

    .venv/bin/python bench/persist_ingest.py [--quick]

Ingest: a `PersistClient` in this process sends N MB of log text (lines of
varied words, 4 KiB records, 64 KiB batches) to a `python -m joblet.persist`
child; the clock runs from the first send to the last acknowledgement (data
compressed and written to the OS). Also MB per CPU-second of the persist
process, which other load on the host skews less. Baselines, same run: the
same bytes written raw to a file with os.write, and compressed in this
process by zstd at persist's level (the ceiling for one writer thread).
Target: >= 100 MB/s (MB = 10^6 bytes).

Query: a finished 100 MB log (--quick: 25 MB) is queried from the start 200
times over one channel; time to the first streamed record, p50 and p99.
Baseline: a unary `Stats` round trip on the same channel. Target: p99 <= 50 ms.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml
import zstandard
from common import Report, p50, p99, parse_args

from joblet.logs.format import LogRecord, Stream
from joblet.persist.client import PersistClient, PersistQueryClient

RECORD = 4096
PER_BATCH = 16
QUERIES = 200
LEVEL = 1  # persist's default compressionLevel
WORDS = (
    b"request served user cache miss hit latency ok error retry token job "
    b"worker started finished bytes path /var/lib value=42 id=7f3a status=200"
).split()


def make_text(size: int) -> bytes:
    rng = random.Random(1)
    lines = []
    total = 0
    while total < size:
        line = b"%d " % rng.randrange(10**9) + b" ".join(rng.choices(WORDS, k=12)) + b"\n"
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def start_persist(root: Path) -> subprocess.Popen[bytes]:
    config = root / "config.yml"
    config.write_text(yaml.safe_dump({"joblet": {"root": str(root)}, "persist": {}}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "joblet.persist", "--config", str(config)],
        stderr=(root / "persist.log").open("wb"),
    )
    deadline = time.monotonic() + 15
    while not (root / "run" / "persist-grpc.sock").exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError((root / "persist.log").read_text())
        time.sleep(0.02)
    return proc


async def ingest(root: Path, job: str, text: bytes) -> float:
    """MB/s from the first send to the last acknowledgement."""
    client = PersistClient(root / "run" / "persist-ipc.sock", max_buffer_bytes=1 << 30)
    await client.start()
    start = time.perf_counter()
    batch_bytes = RECORD * PER_BATCH
    for offset in range(0, len(text), batch_bytes):
        chunk = text[offset : offset + batch_bytes]
        now = time.time_ns()
        client.send_logs(
            job,
            [
                LogRecord(Stream.STDOUT, now, chunk[i : i + RECORD])
                for i in range(0, len(chunk), RECORD)
            ],
        )
        if client.buffered_bytes > 32 << 20:
            await asyncio.sleep(0)  # let the sender run, as a daemon's loop would
            while client.buffered_bytes > 16 << 20:
                await asyncio.sleep(0.001)
    client.job_finished(job)
    assert await client.flush(120)
    elapsed = time.perf_counter() - start
    await client.close()
    assert client.dropped_bytes == 0
    return len(text) / elapsed / 1e6


def raw_write(root: Path, text: bytes) -> float:
    path = root / "raw.bin"
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for offset in range(0, len(text), RECORD * PER_BATCH):
        os.write(fd, text[offset : offset + RECORD * PER_BATCH])
    os.close(fd)
    elapsed = time.perf_counter() - start
    path.unlink()
    return len(text) / elapsed / 1e6


def compress_only(text: bytes) -> float:
    """MB/s of zstd alone, one thread, in the blocks persist writes."""
    compressor = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True).compressobj()
    block = zstandard.COMPRESSOBJ_FLUSH_BLOCK
    start = time.perf_counter()
    for offset in range(0, len(text), 1 << 20):
        compressor.compress(text[offset : offset + (1 << 20)])
        compressor.flush(block)
    return len(text) / (time.perf_counter() - start) / 1e6


async def first_byte_latencies(root: Path, job: str) -> tuple[list[float], list[float]]:
    """(first record of a query, unary Stats round trip), ms."""
    first, unary = [], []
    async with PersistQueryClient(root / "run" / "persist-grpc.sock") as query:
        for _ in range(QUERIES):
            start = time.perf_counter()
            stream = query.query_logs(job)
            await anext(stream)
            first.append((time.perf_counter() - start) * 1000)
            await stream.aclose()
            start = time.perf_counter()
            await query.stats()
            unary.append((time.perf_counter() - start) * 1000)
    return first, unary


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def run(
    root: Path, size: int, pid: int
) -> tuple[float, float, tuple[list[float], list[float]]]:
    """Median ingest MB/s, MB per CPU-second of persist, query latencies (ms).

    MB per CPU-second does not depend on other load on the host (a shared
    2-core machine skews wall-clock rates)."""
    text = make_text(size)
    rates, per_cpu = [], []
    for index in range(3):
        before = cpu_s(pid)
        rates.append(await ingest(root, f"bench-{index}", text))
        per_cpu.append(size / 1e6 / (cpu_s(pid) - before))
    latencies = await first_byte_latencies(root, "bench-0")
    return statistics.median(rates), statistics.median(per_cpu), latencies


def main() -> None:
    args = parse_args(__doc__ or "")
    size = (25 if args.quick else 100) * 10**6
    report = Report("persist_ingest", args.quick)
    with tempfile.TemporaryDirectory(prefix="persist-bench-") as tmp:
        root = Path(tmp)
        proc = start_persist(root)
        try:
            rate, per_cpu, (latencies, unary) = asyncio.run(run(root, size, proc.pid))
            stored = sum(p.stat().st_size for p in (root / "logs" / "bench-0").glob("seg-*"))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        text = make_text(size)
        baseline = statistics.median(raw_write(root, text) for _ in range(3))
        zstd_rate = statistics.median(compress_only(text) for _ in range(3))
    report.figures = {
        "mb": size / 1e6,
        "ingest_mb_per_s": rate,
        "ingest_mb_per_persist_cpu_s": per_cpu,
        "load_average_1m": os.getloadavg()[0],
        "query_first_byte_p50_ms": p50(latencies),
        "query_first_byte_p99_ms": p99(latencies),
        "compression_ratio": size / stored,
    }
    report.baselines = {
        "raw_file_write_mb_per_s": baseline,
        "zstd_alone_mb_per_s": zstd_rate,
        "unary_stats_p50_ms": p50(unary),
        "unary_stats_p99_ms": p99(unary),
    }
    report.check("ingest", rate >= 100, ">= 100 MB/s")
    report.check("query_first_byte_p99", p99(latencies) <= 50, "<= 50 ms")
    report.emit()


if __name__ == "__main__":
    main()
