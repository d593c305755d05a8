"""How big an ext4 image must be so that its usable space is the size asked.

ext4 spends part of its device on metadata, so an image of exactly the size
asked holds less (64 MiB gives 50 MiB with mke2fs defaults, 1 GiB 957 MiB
with `-m 0`). We fix the parameters that decide the overhead, so it is
predictable instead of following mke2fs's size classes:

- `-T default -b 4096`: 4 KiB blocks and one 256-byte inode per 16 KiB
  (inode tables: 1/64 of the device); small images would otherwise get
  1 KiB blocks and an inode per 4 KiB.
- `-m 0`: no blocks reserved for root; `-O ^resize_inode`: volumes never grow.
- `-J size=`: a journal of 1/64 of the size, 4 to 128 MiB; none below 16 MiB
  (mke2fs refuses a journal over half the device).
- The kernel keeps min(2 %, 4096 blocks) of an ext4 device back for
  delayed allocation (ext4_calculate_resv_clusters, fs/ext4/super.c); statfs
  subtracts it from the available blocks, and so does a writer.

Measured with e2fsprogs 1.47 on Linux 6.x: statvfs available / size asked is
100.0-103 % from 1 MiB to 64 GiB (the fixed 32 KiB weighs most at 1 MiB).
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
BLOCK = 4096
NO_JOURNAL_BELOW = 16 * MIB
MIN_JOURNAL = 4 * MIB
MAX_JOURNAL = 128 * MIB
RESERVED_BLOCKS_CAP = 4096 * BLOCK  # the kernel's cap on its delalloc reserve
FIXED_OVERHEAD = 32 * 1024  # superblock, descriptors, root and lost+found
# Parts per 10 000 of the device: inode tables (1/64 = 156), bitmaps and
# group descriptors (1), and the kernel's 2 % reserve (200) while under its cap.
INODE_PARTS = 156
BITMAP_PARTS = 1
RESERVE_PARTS = 200
PARTS = 10_000


@dataclass(frozen=True)
class Ext4Plan:
    image_bytes: int
    journal_bytes: int  # 0: no journal


def journal_bytes(size: int) -> int:
    if size < NO_JOURNAL_BELOW:
        return 0
    return min(max(size // 64 // MIB, MIN_JOURNAL // MIB), MAX_JOURNAL // MIB) * MIB


def plan_image(size: int) -> Ext4Plan:
    """The image size (a whole number of blocks) whose ext4 offers `size` bytes."""
    journal = journal_bytes(size)
    fixed = size + journal + FIXED_OVERHEAD
    image = _ceil_div(fixed * PARTS, PARTS - INODE_PARTS - BITMAP_PARTS - RESERVE_PARTS)
    if image * RESERVE_PARTS // PARTS >= RESERVED_BLOCKS_CAP:
        # Past the cap the reserve is a constant, not a share.
        image = _ceil_div((fixed + RESERVED_BLOCKS_CAP) * PARTS, PARTS - INODE_PARTS - BITMAP_PARTS)
    return Ext4Plan(_ceil_div(image, BLOCK) * BLOCK, journal)


def mkfs_argv(mkfs: str, image: str, plan: Ext4Plan, label: str) -> list[str]:
    """mke2fs on the image file itself (no loop device needed).

    Lazy inode-table and journal init skip zeroing: the image comes from
    fallocate, whose unwritten extents read as zeros, so nothing is stale.
    """
    journal = ["-J", f"size={plan.journal_bytes // MIB}"] if plan.journal_bytes else []
    features = "^resize_inode" + ("" if plan.journal_bytes else ",^has_journal")
    return [
        mkfs, "-q", "-F", "-T", "default", "-b", str(BLOCK), "-m", "0",
        "-O", features, *journal,
        "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
        "-L", label[:16], image,
    ]  # fmt: skip


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)
