"""The btrfs ioctl arguments and request numbers, against linux/btrfs.h."""

from __future__ import annotations

import struct

import pytest

from joblet.workspaces import btrfs


def test_request_numbers_match_the_kernel_header() -> None:
    # _IOW(0x94, 14, struct btrfs_ioctl_vol_args) and friends, as the kernel defines them.
    assert btrfs.SUBVOL_CREATE == 0x5000940E
    assert btrfs.SNAP_CREATE == 0x50009401
    assert btrfs.SNAP_DESTROY == 0x5000940F
    assert btrfs.SNAP_CREATE_V2 == 0x50009417
    assert btrfs.SUBVOL_CREATE_V2 == 0x50009418
    assert btrfs.QGROUP_LIMIT == 0x8030942B
    assert btrfs.QUOTA_CTL == 0xC0109428


def test_vol_args_carry_the_name_in_a_4096_byte_struct() -> None:
    raw = btrfs.vol_args("3f2a")
    assert len(raw) == 4096
    assert struct.unpack_from("=q", raw)[0] == 0
    assert raw[8:13] == b"3f2a\0"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\0b", "x" * 4088])
def test_vol_args_refuse_what_is_not_one_name(name: str) -> None:
    with pytest.raises(ValueError, match="not a subvolume name"):
        btrfs.vol_args(name)


def test_limit_args_cap_referenced_bytes_of_the_fds_subvolume() -> None:
    qgroup, flags, max_rfer, max_excl, *_ = struct.unpack("=6Q", btrfs.limit_args(1 << 30))
    assert (qgroup, flags, max_rfer, max_excl) == (0, btrfs.QGROUP_LIMIT_MAX_RFER, 1 << 30, 0)


def test_every_subvolume_maker_is_blocked_for_jobs() -> None:
    from joblet.isolation.seccomp import BLOCKED_IOCTLS

    assert set(btrfs.SUBVOLUME_MAKERS) <= set(BLOCKED_IOCTLS)
