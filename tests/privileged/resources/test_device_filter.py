"""The device allowlist on the real kernel: the v1 devices controller and the
cgroup v2 BPF program (in a group of any cgroup2 mount: device programs need
no controller, so a hybrid host's `unified` mount runs them too)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.resources import _fs
from joblet.resources.bpf_devices import apply_device_filter, bpf_unavailable
from joblet.resources.detect import find_v2_mount, parse_mountinfo
from joblet.resources.device_rules import char, job_rules
from joblet.resources.interface import CgroupManager, Limits
from joblet.testing.devices import make_char_node, probe_in

pytestmark = pytest.mark.privileged

GPU_MAJOR = 195  # nvidia's; no driver here, so an allowed open fails with ENXIO


@pytest.fixture
def nodes(tmp_path: Path) -> Path:
    make_char_node(tmp_path / "nvidia0", GPU_MAJOR, 0)
    make_char_node(tmp_path / "nvidia1", GPU_MAJOR, 1)
    return tmp_path


def gpu_steps(nodes: Path) -> list[list[object]]:
    return [
        ["open", "/dev/zero", "rw"],
        ["open", "/dev/null", "rw"],
        ["open", str(nodes / "nvidia0"), "rw"],
        ["open", str(nodes / "nvidia1"), "rw"],
        ["mknod", str(nodes / "made-in-job"), GPU_MAJOR, 1],  # not the job's GPU
        ["mknod", str(nodes / "own-made-in-job"), GPU_MAJOR, 0],  # the job's GPU
        ["open", str(nodes / "own-made-in-job"), "rw"],
        ["open", str(nodes / "made-by-host"), "rw"],
    ]


def test_v1_devices_allow_only_the_rules(manager: CgroupManager, nodes: Path) -> None:
    if manager.device_filter != "v1":
        pytest.skip("no cgroup v1 devices controller on this host")
    make_char_node(nodes / "made-by-host", GPU_MAJOR, 2)
    limits = Limits(devices=job_rules([char(GPU_MAJOR, 0)]))
    job = manager.create(str(uuid.uuid4()), limits)
    got = probe_in(job.procs_files(), gpu_steps(nodes))
    assert got == ["ok", "ok", "ENXIO", "EPERM", "EPERM", "ok", "ENXIO", "EPERM"]


def test_v1_group_without_rules_reaches_every_node(manager: CgroupManager, nodes: Path) -> None:
    """The control: the same probe in a group without rules gets past the
    cgroup to the (absent) driver, so the EPERMs above are the rules' doing."""
    make_char_node(nodes / "made-by-host", GPU_MAJOR, 2)
    job = manager.create(str(uuid.uuid4()), Limits())
    got = probe_in(job.procs_files(), gpu_steps(nodes))
    assert got == ["ok", "ok", "ENXIO", "ENXIO", "ok", "ok", "ENXIO", "ENXIO"]


@pytest.fixture
def v2_group() -> Iterator[Path]:
    mount = find_v2_mount(
        parse_mountinfo(Path("/proc/self/mountinfo").read_text()), Path("/sys/fs/cgroup")
    )
    if mount is None:
        pytest.skip("no cgroup2 filesystem mounted under /sys/fs/cgroup")
    reason = bpf_unavailable()
    if reason:
        pytest.skip(f"this host refuses device programs: {reason}")
    group = mount / f"joblet-devtest-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        yield group
    finally:
        _fs.kill_pids(_fs.read_pids(group))
        _fs.wait_for(lambda: not _fs.read_pids(group), 5.0)
        group.rmdir()


def test_bpf_program_allows_zero_rw_and_null_read_only(v2_group: Path, tmp_path: Path) -> None:
    apply_device_filter(v2_group, [char(1, 5, "rw"), char(1, 3, "r")])
    steps = [
        ["open", "/dev/zero", "rw"],
        ["open", "/dev/null", "r"],
        ["open", "/dev/null", "w"],
        ["open", "/dev/urandom", "r"],
        ["mknod", str(tmp_path / "null"), 1, 3],  # these rules allow no mknod
    ]
    got = probe_in([v2_group / "cgroup.procs"], steps)
    assert got == ["ok", "ok", "EPERM", "EPERM", "EPERM"]


def test_bpf_program_holds_gpu_minors_and_mknod(v2_group: Path, nodes: Path) -> None:
    make_char_node(nodes / "made-by-host", GPU_MAJOR, 2)
    apply_device_filter(v2_group, job_rules([char(GPU_MAJOR, 0)]))
    got = probe_in([v2_group / "cgroup.procs"], gpu_steps(nodes))
    assert got == ["ok", "ok", "ENXIO", "EPERM", "EPERM", "ok", "ENXIO", "EPERM"]


def test_v2_group_without_program_reaches_every_node(v2_group: Path, nodes: Path) -> None:
    make_char_node(nodes / "made-by-host", GPU_MAJOR, 2)
    got = probe_in([v2_group / "cgroup.procs"], gpu_steps(nodes))
    assert got == ["ok", "ok", "ENXIO", "ENXIO", "ok", "ok", "ENXIO", "ENXIO"]


def test_a_v2_manager_probes_loading_and_attaching_under_its_parent(v2_group: Path) -> None:
    from joblet.resources.v2 import V2CgroupManager

    mount = v2_group.parent
    manager = V2CgroupManager(mount, v2_group.name + "/daemon")
    try:
        assert (manager.device_filter, manager.device_filter_reason) == ("bpf", "")
        assert [p.name for p in manager.parent_dir.iterdir() if p.is_dir()] == []  # probe gone
    finally:
        manager.parent_dir.rmdir()
