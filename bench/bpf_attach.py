"""Device filter cost: build, load (bpf(2)) and attach a job's BPF device
program to a fresh cgroup2 group, against the v1 devices files in the same run.

    .venv/bin/python bench/bpf_attach.py [--quick]

The rules are a GPU job's: mknod of any node, the base /dev nodes, one GPU and
its three control devices (21 rules, 164 instructions). Each sample is a new group in the host's
cgroup2 mount (a hybrid host's controller-less `unified` one works: device
programs need no controller), timed from building the program to the end of
BPF_PROG_ATTACH; the group is removed after. Baseline: the same rules written
to a v1 devices group ("a" to devices.deny, then one devices.allow write per
rule), where a devices controller is mounted.
Target: load + attach p50 <= 2 ms.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from common import Report, describe_ms, p50, p99, parse_args, require_root

from joblet.resources.bpf_devices import apply_device_filter
from joblet.resources.bpf_program import build_program, instruction_count
from joblet.resources.detect import find_v2_mount, parse_mountinfo
from joblet.resources.device_rules import char, job_rules, v1_writes

RULES = job_rules([char(195, 0), char(195, 255), char(235, 0), char(235, 1)])
WARMUP = 20


def bpf_samples(mount: Path, runs: int) -> list[float]:
    parent = mount / f"joblet-bench-bpf-{uuid.uuid4().hex[:8]}"
    parent.mkdir()
    samples = []
    try:
        for i in range(WARMUP + runs):
            group = parent / f"g{i}"
            group.mkdir()
            start = time.perf_counter()
            apply_device_filter(group, RULES)
            elapsed = time.perf_counter() - start
            group.rmdir()
            if i >= WARMUP:
                samples.append(elapsed)
    finally:
        parent.rmdir()
    return samples


def v1_samples(hierarchy: Path, runs: int) -> list[float]:
    parent = hierarchy / f"joblet-bench-dev-{uuid.uuid4().hex[:8]}"
    parent.mkdir()
    samples = []
    try:
        for i in range(WARMUP + runs):
            group = parent / f"g{i}"
            group.mkdir()
            start = time.perf_counter()
            for name, value in v1_writes(RULES):
                fd = os.open(group / name, os.O_WRONLY)
                try:
                    os.write(fd, value.encode())
                finally:
                    os.close(fd)
            elapsed = time.perf_counter() - start
            group.rmdir()
            if i >= WARMUP:
                samples.append(elapsed)
    finally:
        parent.rmdir()
    return samples


def main() -> None:
    args = parse_args(__doc__ or "")
    require_root()
    runs = 200 if args.quick else 1000
    report = Report("bpf_attach", args.quick)
    mount = find_v2_mount(
        parse_mountinfo(Path("/proc/self/mountinfo").read_text()), Path("/sys/fs/cgroup")
    )
    if mount is None:
        raise SystemExit("no cgroup2 mount under /sys/fs/cgroup")
    bpf = bpf_samples(mount, runs)
    print(f"rules {len(RULES)}, instructions {instruction_count(build_program(RULES))}")
    print("BPF build + load + attach", describe_ms(bpf))
    report.figures = {"bpf_p50_ms": p50(bpf) * 1e3, "bpf_p99_ms": p99(bpf) * 1e3}
    devices = Path("/sys/fs/cgroup/devices")
    if (devices / "devices.allow").exists():
        v1 = v1_samples(devices, runs)
        print("v1 devices.deny + allow writes", describe_ms(v1))
        report.baselines = {"v1_devices_p50_ms": p50(v1) * 1e3, "v1_devices_p99_ms": p99(v1) * 1e3}
    report.check("bpf p50", p50(bpf) <= 0.002, "load + attach <= 2 ms")
    report.emit()


if __name__ == "__main__":
    main()
