"""The user namespace jobs run in (`joblet.userNamespace`).

The launcher makes one user namespace at start that maps uids and gids
0..ID_COUNT-1 to host ids BASE_ID..BASE_ID+ID_COUNT-1, and keeps an fd to it.
Each job's init builds its namespaces, mounts, cgroup and network as host root
(as without a user namespace), then, after pivot_root, enters it with setns(2)
just before dropping its capabilities: the job's root is host uid BASE_ID,
the capabilities it keeps apply only to objects of that namespace (none of the
host's: its mount, network, pid, ipc and uts namespaces belong to the host's
user namespace), and what it creates on the host is owned by BASE_ID + uid.

The namespace is owned by host uid BASE_ID, not root: the kernel charges the
per-user counts of everything in it (inotify instances, RLIMIT_NPROC's
processes) to its owner in the parent namespace (kernel/ucount.c,
inc_ucount), so jobs exhausting them leave host root's untouched. All jobs of
a launcher share this one range (see docs/SECURITY.md).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from joblet.isolation import libc

# A range clear of the ids distributions hand out (/etc/subuid starts at
# 100000 in steps of 65536) and below 2^31 (tools that keep uids signed).
BASE_ID = 0x7F000000
ID_COUNT = 65536
MODES = ("auto", "on", "off")


class UserNamespaceUnavailable(Exception):
    """The kernel refused to make or map a user namespace."""


@dataclass(frozen=True)
class IdMap:
    """Ids 0..count-1 inside map to base..base+count-1 on the host."""

    base: int = BASE_ID
    count: int = ID_COUNT

    def map_text(self) -> str:
        """The content of /proc/PID/uid_map and gid_map (user_namespaces(7))."""
        return f"0 {self.base} {self.count}\n"

    def host_id(self, inner: int) -> int:
        """The host id of `inner`; ValueError for one outside the map."""
        if not 0 <= inner < self.count:
            raise ValueError(f"id {inner} is outside the job's user namespace (0-{self.count - 1})")
        return self.base + inner


def chown_tree(top: str, uid: int, gid: int) -> None:
    """Give `top` and everything under it to uid:gid, never following a symlink."""
    os.lchown(top, uid, gid)
    for parent, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            os.lchown(os.path.join(parent, name), uid, gid)


def create(ids: IdMap, procfs: str = "/proc") -> int:
    """A new user namespace mapped by `ids`, owned by host uid ids.base; an
    O_CLOEXEC fd to it. Raises UserNamespaceUnavailable. Forks: call it while
    single-threaded."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's work is seen through its namespace
        os.close(ready_r)
        os.close(done_w)
        _unshare_as(ids.base, ready_w, done_r)
    os.close(ready_w)
    os.close(done_r)
    try:
        answer = os.read(ready_r, 256)
        if answer != b"1":
            why = answer[1:].decode(errors="replace") or "no answer"
            raise UserNamespaceUnavailable(f"the kernel refused to create a user namespace: {why}")
        return _map_and_open(pid, ids, procfs)
    finally:
        os.close(ready_r)
        os.close(done_w)  # the child reads end of file and exits
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _unshare_as(owner: int, ready_w: int, done_r: int) -> None:  # pragma: no cover
    """In the forked child: become `owner` (capabilities kept, in case the
    host allows user namespaces to privileged callers only), unshare, report."""
    code = 1
    try:
        libc.set_keepcaps(True)
        os.setgroups([])
        os.setresgid(owner, owner, owner)
        os.setresuid(owner, owner, owner)
        permitted = libc.capget()[1]
        libc.capset(permitted, permitted, 0)
        libc.unshare(libc.CLONE_NEWUSER)
        os.write(ready_w, b"1")
        os.read(done_r, 1)
        code = 0
    except BaseException as exc:  # the reason goes to the parent's message
        with contextlib.suppress(OSError):
            os.write(ready_w, b"0" + str(exc).encode()[:250])
    finally:
        os._exit(code)


def _map_and_open(pid: int, ids: IdMap, procfs: str) -> int:
    try:
        # setgroups stays denied: a job cannot shed a supplementary group to
        # get past a file that denies that group (user_namespaces(7)).
        for name, text in (("setgroups", "deny"), ("uid_map", ids.map_text()),
                           ("gid_map", ids.map_text())):  # fmt: skip
            with open(f"{procfs}/{pid}/{name}", "w") as f:
                f.write(text)
        return os.open(f"{procfs}/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise UserNamespaceUnavailable(f"cannot map the user namespace: {exc}") from exc


def enter(userns_fd: int) -> None:
    """Join the namespace as its root (the init, after pivot_root, host root).

    Supplementary groups go first: the namespace denies setgroups. setns
    gives every capability in the namespace and a full bounding set; the
    caller drops them as for any job."""
    os.setgroups([])
    libc.setns(userns_fd, libc.CLONE_NEWUSER)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
