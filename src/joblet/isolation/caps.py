"""Which capabilities a job keeps: pure data and mask arithmetic."""

from __future__ import annotations

from collections.abc import Iterable

# Numbers from <linux/capability.h>.
CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_FOWNER = 3
CAP_FSETID = 4
CAP_KILL = 5
CAP_SETGID = 6
CAP_SETUID = 7
CAP_SETPCAP = 8
CAP_NET_BIND_SERVICE = 10
CAP_NET_RAW = 13
CAP_SYS_CHROOT = 18
CAP_MKNOD = 27
CAP_AUDIT_WRITE = 29
CAP_SETFCAP = 31

# The default set common container runtimes grant: no SYS_ADMIN, SYS_MODULE,
# SYS_PTRACE, SYS_BOOT, NET_ADMIN, DAC_READ_SEARCH, SYS_RAWIO... and, unlike
# them, no NET_RAW: raw and packet sockets would let a job send from another
# job's address or MAC. ping uses ICMP datagram sockets instead (the job's
# network namespace allows them: net.ipv4.ping_group_range).
DEFAULT_CAPS: frozenset[int] = frozenset(
    {
        CAP_CHOWN,
        CAP_DAC_OVERRIDE,
        CAP_FSETID,
        CAP_FOWNER,
        CAP_MKNOD,
        CAP_SETGID,
        CAP_SETUID,
        CAP_SETFCAP,
        CAP_SETPCAP,
        CAP_NET_BIND_SERVICE,
        CAP_SYS_CHROOT,
        CAP_KILL,
        CAP_AUDIT_WRITE,
    }
)


def caps_mask(caps: Iterable[int]) -> int:
    """A 64-bit mask with one bit per capability number."""
    mask = 0
    for cap in caps:
        mask |= 1 << cap
    return mask


def caps_from_mask(mask: int) -> frozenset[int]:
    return frozenset(bit for bit in range(64) if mask >> bit & 1)


def caps_to_drop(keep: frozenset[int], last_cap: int) -> tuple[int, ...]:
    """Capability numbers to remove from the bounding set, in order."""
    return tuple(cap for cap in range(last_cap + 1) if cap not in keep)


def parse_last_cap(text: str) -> int:
    """Parse /proc/sys/kernel/cap_last_cap."""
    return int(text.strip())
