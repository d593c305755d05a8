"""Inits cloned ahead of their jobs ("spares"), kept by the launcher.

Creating a job's namespaces and mounting the part of its root that every job
with the same allowed mounts shares is most of a launch. An init does that
first and then waits on its control socket for its job (child.run_init), so
the launcher keeps one such spare per InitKey and hands it the next launch
with that key: the launch itself only sends the job's own part.

A spare is made after a launch was answered, so making it never delays one,
and it is dropped after SPARE_MAX_AGE_S: its read-only binds pin host files
such as /etc/passwd as they were when it was made, and a host that replaces
one must not keep serving the old file for long. A dropped spare sees its
control socket close and exits; the launcher reaps it like any child.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from joblet.isolation import child, libc
from joblet.isolation.prepare import (
    HostFacts,
    InitKey,
    ParentEnds,
    close_child_ends,
    prepare_init,
)
from joblet.network import jobside

SPARE_MAX_AGE_S = 5.0


@dataclass
class Init:
    """A cloned init that has no job yet, as the launcher holds it."""

    key: InitKey
    pid: int
    ends: ParentEnds
    ctl: socket.socket
    made_at: float
    status: int | None = None  # it ended before getting a job

    def send(self, order: child.JobOrder) -> None:
        """Hand the init its job. An init that died cannot take it: its error
        pipe (or its exit) then answers the launch."""
        try:
            self.ctl.sendall(child.frame_order(order))
        except OSError:
            pass
        finally:
            self.ctl.close()

    def discard(self) -> None:
        self.ctl.close()  # the init reads end of file and exits
        for fd in (self.ends.stdout_r, self.ends.stderr_r, self.ends.err_r):
            os.close(fd)


def clone_init(key: InitKey, host: HostFacts) -> Init:
    """Clone an init for `key` into its new namespaces (see child.run_init)."""
    # A veth is wired from inside the init through a netlink socket bound in
    # the launcher's namespace, where the veth's host end lands.
    host_sock = jobside.open_host_socket() if key[2] else None
    try:
        return _clone(key, host, host_sock)
    finally:
        if host_sock is not None:
            host_sock.close()  # the init has its own copy


def _clone(key: InitKey, host: HostFacts, host_sock: Any) -> Init:
    prep, ends, ctl = prepare_init(key, host, host_sock)
    try:
        # The cgroup namespace comes after the init joined its job's cgroup.
        pid = libc.clone_process(key[0] & ~libc.CLONE_NEWCGROUP)
    except BaseException:
        close_child_ends(prep)
        Init(key, -1, ends, ctl, 0.0).discard()
        raise
    if pid == 0:
        child.run_init(prep)  # never returns
    close_child_ends(prep)
    return Init(key, pid, ends, ctl, time.monotonic())


class Spares:
    """At most one spare per key, and the pids of spares not yet reaped."""

    def __init__(self, max_age_s: float = SPARE_MAX_AGE_S) -> None:
        self.max_age_s = max_age_s
        self.ready: dict[InitKey, Init] = {}
        self._pids: dict[int, Init] = {}

    def add(self, init: Init) -> None:
        old = self.ready.pop(init.key, None)
        if old is not None:
            old.discard()
        self.ready[init.key] = init
        self._pids[init.pid] = init

    def take(self, key: InitKey) -> Init | None:
        """The spare for `key`, now the caller's to reap; None if there is no usable one."""
        init = self.ready.pop(key, None)
        if init is None:
            return None
        if init.status is not None or self._expired(init, time.monotonic()):
            init.discard()
            return None
        del self._pids[init.pid]
        return init

    def drop(self, init: Init) -> None:
        """Let a taken init go unused: it exits, and is reaped as a spare."""
        init.discard()
        self._pids[init.pid] = init

    def reaped(self, pid: int, status: int) -> bool:
        """Whether `pid` was a spare's (then it is forgotten)."""
        init = self._pids.pop(pid, None)
        if init is None:
            return False
        init.status = status
        if self.ready.get(init.key) is init:
            del self.ready[init.key]
            init.discard()
        return True

    def expire(self) -> None:
        now = time.monotonic()
        for key, init in list(self.ready.items()):
            if self._expired(init, now):
                del self.ready[key]
                init.discard()

    def discard_all(self) -> None:
        """Let every ready spare go (the launcher exits); they are reaped as spares."""
        for init in self.ready.values():
            init.discard()
        self.ready.clear()

    def pending(self) -> bool:
        """Whether a spare is still to be reaped."""
        return bool(self._pids)

    def next_deadline(self) -> float | None:
        if not self.ready:
            return None
        return min(init.made_at for init in self.ready.values()) + self.max_age_s

    def _expired(self, init: Init, now: float) -> bool:
        return now - init.made_at > self.max_age_s
