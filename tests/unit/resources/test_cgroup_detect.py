# ruff: noqa: E501  (mountinfo samples are kept verbatim, one mount a line)
"""Version detection on sample mountinfo texts, and the factory on fake trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from joblet.resources.detect import (
    CgroupMount,
    choose_layout,
    create_cgroup_manager,
    parse_mountinfo,
)
from joblet.resources.null import NullCgroupManager
from joblet.resources.v1 import V1CgroupManager
from joblet.resources.v2 import V2CgroupManager

ROOT = Path("/sys/fs/cgroup")

# This host (Debian 12 VM, Linux 6.18): v1 hierarchies plus an empty cgroup2.
HYBRID = """\
23 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

# systemd on a v1 distribution: optional fields, co-mounted cpu,cpuacct.
V1_SYSTEMD = """\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpuset
32 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
33 25 0:30 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,blkio
34 25 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids
35 25 0:32 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,freezer
"""

PURE_V2 = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
26 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""

NONE = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
V2_CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc\n"


def test_parse_mountinfo_reads_cgroup_mounts_only() -> None:
    mounts = parse_mountinfo(V1_SYSTEMD)
    assert CgroupMount(ROOT / "cpu,cpuacct", "cgroup", frozenset({"cpu", "cpuacct"})) in mounts
    assert CgroupMount(ROOT / "unified", "cgroup2") in mounts
    systemd = next(m for m in mounts if m.mount_point.name == "systemd")
    assert systemd.controllers == frozenset()  # name=systemd is no controller
    assert all(m.fstype in ("cgroup", "cgroup2") for m in mounts)


def test_parse_mountinfo_unescapes_octal() -> None:
    line = r"40 31 0:37 / /mnt/my\040cgroups rw - cgroup2 cgroup2 rw"
    assert parse_mountinfo(line)[0].mount_point == Path("/mnt/my cgroups")


def test_hybrid_host_is_v1() -> None:
    layout = choose_layout(parse_mountinfo(HYBRID), "hugetlb\n", ROOT)
    assert layout.version == "v1"
    assert layout.controllers["cpu"] == ROOT / "cpu"
    assert layout.controllers["cpuacct"] == ROOT / "cpuacct"
    assert layout.controllers["freezer"] == ROOT / "freezer"


def test_comounted_v1() -> None:
    layout = choose_layout(parse_mountinfo(V1_SYSTEMD), "", ROOT)
    assert layout.version == "v1"
    assert layout.controllers["cpu"] == layout.controllers["cpuacct"] == ROOT / "cpu,cpuacct"


def test_pure_v2() -> None:
    layout = choose_layout(parse_mountinfo(PURE_V2), V2_CONTROLLERS, ROOT)
    assert layout.version == "v2"
    assert layout.controllers["io"] == ROOT


def test_v2_without_needed_controllers_is_none() -> None:
    layout = choose_layout(parse_mountinfo(PURE_V2), "cpu memory\n", ROOT)
    assert layout.version == "none"
    assert "io" in layout.reason


def test_no_cgroups_is_none() -> None:
    layout = choose_layout(parse_mountinfo(NONE), "", ROOT)
    assert layout.version == "none"
    assert layout.reason


def test_v1_missing_a_controller_is_none() -> None:
    text = "\n".join(line for line in HYBRID.splitlines() if "freezer" not in line)
    layout = choose_layout(parse_mountinfo(text), "hugetlb\n", ROOT)
    assert layout.version == "none"
    assert "freezer" in layout.reason


def test_mounts_outside_the_root_are_ignored() -> None:
    assert choose_layout(parse_mountinfo(HYBRID), "", Path("/elsewhere")).version == "none"


def fake_host(tmp_path: Path, mountinfo: str) -> tuple[Path, Path]:
    """A procfs whose mountinfo points into a cgroup tree under tmp_path."""
    root = tmp_path / "cg"
    text = mountinfo.replace("/sys/fs/cgroup", str(root))
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(text)
    for mount in parse_mountinfo(text):
        mount.mount_point.mkdir(parents=True, exist_ok=True)
    return root, tmp_path / "proc"


@pytest.mark.parametrize(
    ("mountinfo", "controllers", "kind"),
    [
        (HYBRID, "hugetlb\n", V1CgroupManager),
        (V1_SYSTEMD, "", V1CgroupManager),
        (PURE_V2, V2_CONTROLLERS, V2CgroupManager),
        (NONE, "", NullCgroupManager),
    ],
)
def test_factory_builds_the_detected_backend(
    tmp_path: Path, mountinfo: str, controllers: str, kind: type
) -> None:
    root, procfs = fake_host(tmp_path, mountinfo)
    v2_dir = root if kind is V2CgroupManager else root / "unified"
    if v2_dir.is_dir():
        (v2_dir / "cgroup.controllers").write_text(controllers)
    assert isinstance(create_cgroup_manager(root, "joblet", procfs), kind)
