"""The image-size math: enough extra for ext4's metadata, journal and reserve."""

from __future__ import annotations

import pytest

from joblet.volumes import ext4

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("size", "journal"),
    [(1 * MIB, 0), (15 * MIB, 0), (16 * MIB, 4 * MIB), (1024 * MIB, 16 * MIB),
     (64 * 1024 * MIB, 128 * MIB)],
)  # fmt: skip
def test_journal_is_a_64th_between_4_and_128_mib(size: int, journal: int) -> None:
    assert ext4.journal_bytes(size) == journal


@pytest.mark.parametrize("size", [MIB, 64 * 10**6, 64 * MIB, 10**9, 1024 * MIB, 10**11])
def test_image_covers_the_overhead_model(size: int) -> None:
    plan = ext4.plan_image(size)
    assert plan.image_bytes % ext4.BLOCK == 0
    reserve = min(plan.image_bytes * 2 // 100, ext4.RESERVED_BLOCKS_CAP)
    usable = plan.image_bytes - plan.image_bytes // 64 - plan.journal_bytes - reserve
    assert size <= usable <= size * 1.03 + 64 * 1024


def test_overhead_share_shrinks_with_size() -> None:
    shares = [ext4.plan_image(s).image_bytes / s for s in (64 * MIB, 1024 * MIB, 64 * 1024 * MIB)]
    assert shares == sorted(shares, reverse=True)
    assert shares[-1] < 1.02  # 64 GiB: inode tables and the capped reserve


def test_mkfs_argv_fixes_the_parameters_that_decide_the_overhead() -> None:
    plan = ext4.plan_image(64 * MIB)
    argv = ext4.mkfs_argv("mkfs.ext4", "/r/v/image", plan, "a-very-long-volume-name")
    assert argv[0] == "mkfs.ext4" and argv[-1] == "/r/v/image"
    joined = " ".join(argv)
    for part in (
        "-T default",
        "-b 4096",
        "-m 0",
        "-O ^resize_inode",
        "-J size=4",
        "-L a-very-long-volu ",
    ):
        assert part in joined + " "
    small = ext4.mkfs_argv("mkfs.ext4", "/i", ext4.plan_image(4 * MIB), "s")
    assert "^resize_inode,^has_journal" in small and "-J" not in small
