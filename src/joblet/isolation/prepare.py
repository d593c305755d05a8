"""Launcher-side preparation of a launch: everything computed before fork."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from joblet.isolation import (
    caps,
    etcfiles,
    libc,
    mountprog,
    rootfs,
    runtime_root,
    sealed,
    seccomp,
    userns,
)
from joblet.isolation.child import JobOrder, Prepared
from joblet.isolation.driver_binds import JOB_DIR as DRIVER_DIR
from joblet.isolation.driver_binds import DriverBinds, existing_files
from joblet.isolation.driver_proc import read_driver_proc
from joblet.isolation.hostview import HostView
from joblet.isolation.spec import LaunchSpec
from joblet.network import jobside

PIPE_SIZE = 1 << 20
TINI_PATHS = ("/usr/bin/tini-static", "/usr/bin/tini")
BASE_NAMESPACES = (
    libc.CLONE_NEWNS | libc.CLONE_NEWUTS | libc.CLONE_NEWIPC | libc.CLONE_NEWNET | libc.CLONE_NEWPID
)


@dataclass
class HostFacts:
    """Facts about the host the launcher reads once at start."""

    tini_fd: int
    seccomp_program: libc.BpfProgram
    caps_to_drop: tuple[int, ...]
    caps_keep_mask: int
    unshare_flags: int
    procfs: str = "/proc"
    resolv_conf: str = "/etc/resolv.conf"
    host_netns_fd: int = -1  # the launcher's own network namespace
    # Where each job mounts its root before pivoting into it. One directory
    # serves every job: each mounts it in its own private mount namespace, so
    # a launch creates nothing on the host's file system.
    job_root: str = ""
    # The user namespace every job enters (see userns); -1: jobs stay in the host's.
    userns_fd: int = -1
    ids: userns.IdMap = field(default_factory=userns.IdMap)
    userns_note: str = "off"  # how it went, for the daemon's log
    view: HostView = field(default_factory=HostView)  # what launches read of the host


@dataclass
class ParentEnds:
    """The launcher's ends of a launch's pipes."""

    stdout_r: int
    stderr_r: int
    err_r: int


def find_tini(candidates: tuple[str, ...] = TINI_PATHS) -> str:
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    raise FileNotFoundError("tini is not installed (apt-get install tini)")


def load_host_facts(job_root: str, procfs: str = "/proc", userns_fd: int = -1) -> HostFacts:
    # tini-static needs no loader or libraries inside the job root; it is
    # exec'd through this fd (fexecve), so the root need not contain it. The
    # fd is a sealed copy, never the host's file (see sealed): copied once
    # per launcher, inherited by every init (spares too) and exec'd there.
    tini_fd = sealed.sealed_copy(find_tini(), "tini")
    with open(f"{procfs}/sys/kernel/cap_last_cap") as f:
        last_cap = caps.parse_last_cap(f.read())
    flags = BASE_NAMESPACES
    if os.path.exists(f"{procfs}/self/ns/cgroup"):
        flags |= libc.CLONE_NEWCGROUP
    return HostFacts(
        tini_fd=tini_fd,
        seccomp_program=seccomp.compile_filter(),
        caps_to_drop=caps.caps_to_drop(caps.DEFAULT_CAPS, last_cap),
        caps_keep_mask=caps.caps_mask(caps.DEFAULT_CAPS),
        unshare_flags=flags,
        procfs=procfs,
        host_netns_fd=os.open(f"{procfs}/self/ns/net", os.O_RDONLY | os.O_CLOEXEC),
        job_root=job_root,
        userns_fd=userns_fd,
    )


def etc_files(spec: LaunchSpec, host_resolv: str) -> dict[str, bytes]:
    """The job's generated /etc files: name -> content."""
    resolv = etcfiles.render_resolv_conf(host_resolv)
    if "nameservers" in spec.network:
        resolv = render_job_resolv(spec.network["nameservers"], host_resolv)
    texts = {
        "hostname": etcfiles.render_hostname(spec.hostname),
        "hosts": etcfiles.render_hosts(spec.hostname, spec.extra_hosts),
        "resolv.conf": resolv,
    }
    return {name: text.encode() for name, text in texts.items()}


def render_job_resolv(nameservers: list[str], host_resolv: str) -> str:
    """resolv.conf from the network's nameservers (none: an empty file)."""
    lines = [f"nameserver {addr}" for addr in nameservers]
    domains = etcfiles.search_domains(host_resolv)
    if nameservers and domains:
        lines.append("search " + " ".join(domains))
    return "".join(line + "\n" for line in lines)


def _job_pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    # Above /proc/sys/fs/pipe-max-size (unprivileged): keep the default size.
    with contextlib.suppress(OSError):
        fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    os.set_blocking(read_end, False)
    return read_end, write_end


# What a spare init is built for: the namespaces to create, the shared part
# of the root (see rootfs.base_key) and whether it holds a netlink socket in
# the launcher's namespace to wire a veth. Launches with the same key can use
# the same spare.
InitKey = tuple[int, rootfs.BaseKey, bool]


@dataclass(frozen=True)
class LaunchPlan:
    order: JobOrder
    key: InitKey
    needs_veth: bool  # wired through a netlink socket the init inherits


def plan_launch(spec: LaunchSpec, host: HostFacts) -> LaunchPlan:
    """Everything a launch needs from its spec. Raises OSError/ValueError."""
    if not spec.argv:
        raise ValueError("empty command")
    if not host.job_root:
        raise ValueError("the launcher has no mount point for job roots")
    inputs = rootfs.RootInputs(
        root=host.job_root,
        allowed=host.view.allowed(spec.allowed_mounts),
        workspace=os.path.realpath(spec.workspace),
        etc_files=etc_files(spec, host.view.text(host.resolv_conf)),
        tmp_size_bytes=spec.tmp_size_bytes,
        volumes=spec.volume_mounts,
        hosts_file=str(spec.network.get("hosts_file") or ""),
        idmapped_volumes=host.userns_fd >= 0,
        runtime=runtime_inputs(spec),
        build=build_inputs(spec, host.ids.base if host.userns_fd >= 0 else 0),
        devices=spec.devices,
        driver_proc=read_driver_proc(spec.driver_proc, spec.gpu_bus_ids),
        driver_binds=driver_binds(spec.driver_files),
    )
    order = JobOrder(
        job_id=spec.job_id,
        steps=mountprog.compile_job_part(inputs),
        hostname=spec.hostname,
        argv=spec.argv,
        env=dict(spec.env),
        workdir=spec.workdir,
        cgroup_procs=tuple(attach_file(p) for p in spec.cgroup_procs),
        uid=spec.uid,
        gid=spec.gid,
        network=dict(spec.network),
        nofile=nofile_limits(spec.max_open_files),
        stdin_path=spec.stdin_path,
        writable_root=bool(spec.build_source),
    )
    needs_veth = jobside.needs_veth(spec.network)
    key = (_unshare_flags(spec, host), rootfs.base_key(inputs), needs_veth)
    return LaunchPlan(order, key, needs_veth)


def driver_binds(files: tuple[tuple[str, str], ...]) -> DriverBinds | None:
    """A GPU job's driver files still on the host, and what the host has
    where their directory goes."""
    if not files:
        return None
    present = existing_files(files)
    host = rootfs.probe_host(runtime_root.with_ancestors([DRIVER_DIR]))
    return DriverBinds(present, host)


def runtime_inputs(spec: LaunchSpec) -> runtime_root.RuntimeRoot | None:
    """The spec's runtime with its host paths resolved and its targets probed."""
    if not spec.runtime_tree:
        return None
    tree = os.path.realpath(spec.runtime_tree)
    if not os.path.isdir(tree):
        raise ValueError(f"runtime tree {spec.runtime_tree} is not a directory")
    mounts = [(runtime_root.resolve_source(tree, src), dst) for src, dst in spec.runtime_mounts]
    return runtime_root.RuntimeRoot(
        tree=tree,
        mounts=mounts,
        targets=rootfs.probe_host(runtime_root.with_ancestors(dst for _, dst in mounts)),
        source_dirs=frozenset(src for src, _ in mounts if os.path.isdir(src)),
    )


def build_inputs(spec: LaunchSpec, owner: int) -> runtime_root.BuildRoot | None:
    if not spec.build_source:
        return None
    for path in (spec.build_source, spec.build_staging):
        if not os.path.isdir(path) or os.path.islink(path):
            raise ValueError(f"build directory {path} is not a directory")
    if spec.build_scratch_bytes <= 0:
        raise ValueError("a build needs a scratch size")
    return runtime_root.BuildRoot(
        os.path.realpath(spec.build_source),
        os.path.realpath(spec.build_staging),
        spec.build_scratch_bytes,
        owner,
    )


# Programs that select(2) break above 1024 descriptors: the soft limit stays
# there and a job that wants more raises it, up to the hard limit.
SOFT_NOFILE = 1024


def nofile_limits(max_open_files: int) -> tuple[int, int]:
    """RLIMIT_NOFILE (soft, hard) for a job allowed `max_open_files` (0: inherited)."""
    if max_open_files <= 0:
        return (0, 0)
    return (min(SOFT_NOFILE, max_open_files), max_open_files)


def prepare_init(
    key: InitKey, host: HostFacts, host_sock: Any = None
) -> tuple[Prepared, ParentEnds, socket.socket]:
    """The pipes, the control socket and the shared root part of one init."""
    stdout_r, stdout_w = _job_pipe()
    stderr_r, stderr_w = _job_pipe()
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    ctl, init_ctl = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    prep = Prepared(
        root=host.job_root,
        base_program=mountprog.compiled_base(key[1]),
        unshare_flags=key[0],
        caps_to_drop=host.caps_to_drop,
        caps_keep_mask=host.caps_keep_mask,
        seccomp_program=host.seccomp_program,
        tini_fd=host.tini_fd,
        stdout_w=stdout_w,
        stderr_w=stderr_w,
        err_w=err_w,
        ctl_fd=init_ctl.detach(),
        host_netns_fd=host.host_netns_fd,
        host_sock=host_sock,
        userns_fd=host.userns_fd,
    )
    return prep, ParentEnds(stdout_r, stderr_r, err_r), ctl


def _unshare_flags(spec: LaunchSpec, host: HostFacts) -> int:
    if spec.network.get("mode") == "host":  # allowed by the daemon (allowHost + admin)
        return host.unshare_flags & ~libc.CLONE_NEWNET
    return host.unshare_flags


def close_child_ends(prep: Prepared) -> None:
    for fd in (prep.stdout_w, prep.stderr_w, prep.err_w, prep.ctl_fd):
        os.close(fd)


def attach_file(procs: str) -> str:
    """Where the forked child writes "0" to move itself into a cgroup.

    On cgroup v1 that is the `tasks` file next to `cgroup.procs`: the child is
    single-threaded, so moving its one thread moves the process, and moving
    "0" (the writer itself) through `tasks` skips the kernel's global
    threadgroup lock and its RCU grace period (cgroup_procs_write_start),
    which costs 5-15 ms per write here. On v2 `cgroup.procs` is the only way.
    """
    tasks = os.path.join(os.path.dirname(procs), "tasks")
    return tasks if procs.endswith("/cgroup.procs") and os.path.exists(tasks) else procs
