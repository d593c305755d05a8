"""`joblet teardown`'s pure parts: which mounts it takes down, its report."""

from __future__ import annotations

from pathlib import Path

from joblet.daemon.teardown import TeardownReport, below, mount_points

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 7:0 / /opt/joblet/volumes/data/mnt rw,nosuid - ext4 /dev/loop0 rw
41 22 0:50 / /opt/joblet/volumes/my\\040vol/mnt rw - tmpfs tmpfs rw
42 40 0:51 / /opt/joblet/volumes/data/mnt/inner rw - tmpfs tmpfs rw
43 22 7:1 / /opt/joblet/volumes rw - ext4 /dev/sdb1 rw
44 22 7:2 / /opt/joblet/volumes2/x/mnt rw - ext4 /dev/loop1 rw
45 22 7:3 / /opt/joblet/volumes/data/mnt rw,nosuid - ext4 /dev/loop3 rw
"""


def test_mount_points_are_unescaped() -> None:
    points = mount_points(MOUNTINFO)
    assert points[0] == "/"
    assert "/opt/joblet/volumes/my vol/mnt" in points


def test_only_points_strictly_below_the_base_deepest_first() -> None:
    found = below(mount_points(MOUNTINFO), "/opt/joblet/volumes")
    assert found[0] == "/opt/joblet/volumes/data/mnt/inner"
    assert sorted(found[1:]) == [
        "/opt/joblet/volumes/data/mnt",
        "/opt/joblet/volumes/data/mnt",  # mounted twice: unmounted twice
        "/opt/joblet/volumes/my vol/mnt",
    ]
    # The base itself (an operator's disk) and a sibling sharing the prefix stay.
    assert "/opt/joblet/volumes" not in found
    assert not [p for p in found if p.startswith("/opt/joblet/volumes2")]


def test_a_failed_part_is_noted_and_the_rest_goes_on() -> None:
    report = TeardownReport()

    def broken() -> list[str]:
        raise OSError("nft failed: no such table")

    assert report.attempt("network", broken) == []
    assert report.attempt("mounts", lambda: ["/a"]) == ["/a"]
    assert report.problems == ["network: nft failed: no such table"]


def test_the_summary_says_what_was_found_and_whether_anything_is_left() -> None:
    root = Path("/opt/joblet")
    assert TeardownReport().summary(root) == "/opt/joblet: nothing of it is left in the kernel"
    report = TeardownReport(killed=["a"], launcher_pid=42, links=["jab1b0", "jab1vx"])
    assert report.summary(root) == (
        "/opt/joblet: nothing of it is left in the kernel"
        " (removed: killed 1 job(s); launcher (pid 42); interfaces jab1b0, jab1vx)"
    )
    report.problems.append("network: nft failed")
    assert report.summary(root).startswith("/opt/joblet: partly torn down; removed: killed")
