"""Volume creation time and write speed inside a filesystem volume.

    .venv/bin/python bench/volume_create.py [--quick]

A VolumeManager of our own (no daemon) under a temp root on the host disk.
Timed: VolumeManager.create of a 1 GB filesystem volume (fallocate, mkfs.ext4,
loop device, mount), then its removal. Write speed: `dd bs=1M oflag=direct
conv=fsync` of 512 MiB into the volume against the same into a file on the
disk that holds the image (the baseline), alternated, median of 3.
Targets: create <= 1 s at p50; volume writes >= 80% of the disk's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import Report, describe_ms, p50, p99, parse_args, require_root

from joblet.isolation import libc
from joblet.volumes import loop
from joblet.volumes.config import VolumesConfig
from joblet.volumes.manager import VolumeManager

WRITE_MIB = 512


def dd_write_mib_s(path: Path, mib: int) -> float:
    argv = ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "oflag=direct",
            "conv=fsync", "status=none"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(argv, check=True)
    elapsed = time.perf_counter() - start
    path.unlink()
    return mib / elapsed


async def measure_creates(manager: VolumeManager, runs: int) -> list[float]:
    times = []
    for i in range(runs):
        start = time.perf_counter()
        await manager.create(f"bench{i}", "1GB")
        times.append(time.perf_counter() - start)
        await manager.remove(f"bench{i}")
    return times


async def measure_writes(
    manager: VolumeManager, raw_dir: Path, runs: int
) -> tuple[list[float], list[float]]:
    info = await manager.create("speed", "1GB")
    volume, raw = [], []
    try:
        for _ in range(runs):
            raw.append(dd_write_mib_s(raw_dir / "raw.bin", WRITE_MIB))
            volume.append(dd_write_mib_s(Path(info.path) / "vol.bin", WRITE_MIB))
    finally:
        await manager.remove("speed")
    return volume, raw


def cleanup(base: Path) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(str(base))]
    for point in sorted(points, key=len, reverse=True):
        libc.umount2(point, libc.MNT_DETACH)
    for device in loop.leftovers(loop.read_bindings(), str(base), set()):
        loop.detach(f"/dev/{device}")
    shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    args = parse_args(__doc__ or "")
    require_root()
    report = Report("volume_create", args.quick)
    base = Path(os.path.realpath(tempfile.mkdtemp(prefix="joblet-bench-vol-", dir="/var/tmp")))
    manager = VolumeManager(base / "volumes", VolumesConfig())
    try:
        creates = asyncio.run(measure_creates(manager, 5 if args.quick else 20))
        volume, raw = asyncio.run(measure_writes(manager, base, 1 if args.quick else 3))
    finally:
        cleanup(base)
    print("create 1GB ", describe_ms(creates))
    print(f"write MiB/s volume={[round(v) for v in volume]} disk={[round(r) for r in raw]}")
    ratio = statistics.median(volume) / statistics.median(raw)
    report.figures = {
        "create_1gb_p50_ms": p50(creates) * 1e3,
        "create_1gb_p99_ms": p99(creates) * 1e3,
        "volume_write_mib_s": statistics.median(volume),
        "volume_vs_disk_write": ratio,
    }
    report.baselines = {"disk_write_mib_s": statistics.median(raw)}
    report.check("create", p50(creates) <= 1.0, "<= 1 s at p50")
    report.check("write speed", ratio >= 0.8, ">= 80% of the disk (dd oflag=direct)")
    report.emit()


if __name__ == "__main__":
    main()
