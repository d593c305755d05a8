"""Fake cgroupfs trees in tmp_path: plain directories and files that stand in
for the kernel's, so the backends' file logic runs without root."""

from __future__ import annotations

from pathlib import Path

import pytest

V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "freezer")


@pytest.fixture
def v1_root(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup"
    for controller in V1_CONTROLLERS:
        (root / controller).mkdir(parents=True)
    (root / "cpuset" / "cpuset.cpus").write_text("0-1\n")
    (root / "cpuset" / "cpuset.mems").write_text("0\n")
    return root


@pytest.fixture
def v2_root(tmp_path: Path) -> Path:
    root = tmp_path / "unified"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("")
    return root
