"""Reading the jobs' directory's mount options from mountinfo text."""

from __future__ import annotations

from joblet.jobs.workspace_mount import is_protected, mount_options

JOBS = "/srv/j\\040root/jobs"  # a space, escaped as mountinfo writes it
MOUNTINFO = (
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    f"40 22 8:1 {JOBS} {JOBS} rw,relatime - ext4 /dev/sda1 rw\n"
    f"41 40 8:1 {JOBS} {JOBS} rw,nosuid,nodev,relatime - ext4 /dev/sda1 rw\n"
)


def test_the_topmost_mount_counts() -> None:
    options = mount_options(MOUNTINFO, "/srv/j root/jobs")
    assert options is not None and is_protected(options)


def test_an_unmounted_path_has_no_options() -> None:
    assert mount_options(MOUNTINFO, "/srv/other") is None
    assert not is_protected(None)


def test_a_mount_without_nodev_is_not_protected() -> None:
    text = "22 1 8:1 / /srv rw,nosuid - ext4 /dev/sda1 rw\n"
    assert not is_protected(mount_options(text, "/srv"))
