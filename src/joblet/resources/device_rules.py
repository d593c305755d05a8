"""The device allowlist of a job's cgroup: pure rules and their v1 lines.

Every job gets the rules of the nodes its /dev holds (isolation.rootfs) plus
those of its GPUs; opening any other device is denied (EPERM), a node made
with mknod included. The same rules feed the v1 devices controller and the
v2 BPF program (resources.bpf_devices).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ACCESS = frozenset("rwm")
PTS_MAJORS = range(136, 144)  # UNIX98 ptys: 8 majors (Documentation/admin-guide/devices.txt)


@dataclass(frozen=True)
class DeviceRule:
    """Allow `access` ("r", "w", "m" for mknod) on char ("c") or block ("b")
    devices `major`:`minor`; None stands for any number."""

    kind: str
    major: int | None
    minor: int | None
    access: str = "rw"

    def __post_init__(self) -> None:
        if self.kind not in ("c", "b"):
            raise ValueError(f"device kind must be c or b, not {self.kind!r}")
        if not self.access or not set(self.access) <= ACCESS:
            raise ValueError(f"device access must be a subset of rwm, not {self.access!r}")

    def v1_line(self) -> str:
        """The devices.allow line: "c 1:3 rw"."""
        return f"{self.kind} {_num(self.major)}:{_num(self.minor)} {self.access}"


def _num(n: int | None) -> str:
    return "*" if n is None else str(n)


def char(major: int, minor: int | None, access: str = "rwm") -> DeviceRule:
    return DeviceRule("c", major, minor, access)


# The nodes isolation.rootfs binds into every job's /dev, and devpts. "m" on
# exactly these: a job may make a node of a device it may open anyway (package
# installs copy /dev/null), and mknod of any other device is refused (EPERM).
BASE_RULES: tuple[DeviceRule, ...] = (
    char(1, 3),  # null
    char(1, 5),  # zero
    char(1, 7),  # full
    char(1, 8),  # random
    char(1, 9),  # urandom
    char(5, 0),  # tty
    char(5, 2),  # ptmx
    *(char(major, None) for major in PTS_MAJORS),
)


def job_rules(extra: Iterable[DeviceRule] = ()) -> tuple[DeviceRule, ...]:
    """The base rules and `extra` (a job's GPUs), without repeats."""
    return tuple(dict.fromkeys((*BASE_RULES, *extra)))


def v1_writes(rules: Iterable[DeviceRule]) -> tuple[tuple[str, str], ...]:
    """(file, value) writes for a v1 devices group: deny all, then allow each.
    Each write is one command to the kernel (devices.allow takes one line)."""
    return (("devices.deny", "a"), *(("devices.allow", r.v1_line()) for r in rules))
