"""`joblet teardown`: remove every kernel object one root's daemon made.

What goes: the launcher, the job groups and the parent group in every cgroup
hierarchy, the daemon's interfaces and nftables table (in the network
namespace the command runs in, the daemon's), the mounts below the root's
volumes/, jobs/ and run/ (volumes, memory ones included: their data goes) and
the loop devices of its volume images. What stays: the files
under the root (job records and logs, volume images, network and volume
definitions, config), from which the next `joblet serve` makes it all again.

Only what this root's config names is touched: its cgroup parent, the
interface prefix of its node id, mounts under its directory and loop devices
of images under it; a daemon of another root running beside it keeps all of
its own. A daemon serving the root, or a running job without `--force`, is
refused before anything is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from joblet.config.model import DaemonConfig, RootLayout
from joblet.daemon import rootlock
from joblet.errors import FailedPrecondition, IsolationError, JobletError, Unavailable
from joblet.isolation import libc, records
from joblet.isolation.client import LauncherClient, wait_process_gone
from joblet.jobs.workspace_mount import release_jobs_dir
from joblet.network.ownership import remove_stopped_daemon_network
from joblet.resources.cleanup import IsOwn, own_jobs, remove_own
from joblet.resources.detect import create_cgroup_manager
from joblet.resources.interface import CgroupManager
from joblet.resources.ownership import forget_owner, normal_root, read_owner
from joblet.volumes import loop
from joblet.workspaces.store import close_quota_store

LAUNCHER_EXIT_S = 10.0
LOOP_WAIT_S = 5.0  # for the autoclear of devices whose mount just went
PING_S = 2.0


@dataclass
class TeardownReport:
    killed: list[str] = field(default_factory=list)  # jobs killed (--force)
    launcher_pid: int = 0  # the launcher that exited, 0 when none ran
    cgroups: list[str] = field(default_factory=list)  # job groups removed
    links: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what could not be removed

    def attempt(self, what: str, step: Callable[[], list[str]]) -> list[str]:
        """`step()`, or [] with the failure noted in `problems`."""
        try:
            return step()
        except (OSError, JobletError) as exc:
            self.problems.append(f"{what}: {exc}")
            return []

    def summary(self, root: Path) -> str:
        """One line: what was found and removed; the problems go apart."""
        parts = [
            f"killed {len(self.killed)} job(s)" if self.killed else "",
            f"launcher (pid {self.launcher_pid})" if self.launcher_pid else "",
            f"{len(self.cgroups)} job cgroup(s)" if self.cgroups else "",
            f"interfaces {', '.join(self.links)}" if self.links else "",
            f"{len(self.mounts)} mount(s)" if self.mounts else "",
            f"loop devices {', '.join(self.loops)}" if self.loops else "",
        ]
        found = "; ".join(p for p in parts if p)
        if self.problems:
            return f"{root}: partly torn down; removed: {found or 'nothing'}"
        removed = f" (removed: {found})" if found else ""
        return f"{root}: nothing of it is left in the kernel{removed}"


def teardown(config: DaemonConfig, force: bool) -> TeardownReport:
    """Refuse (FailedPrecondition, nothing removed) while a daemon serves the
    root or, without `force`, while a job runs; otherwise remove it all. Each
    part is tried even when another fails: see TeardownReport.problems."""
    layout = config.layout
    if not layout.root.is_dir():
        raise FailedPrecondition(f"root {layout.root} does not exist")
    serving = rootlock.holder(layout)
    if serving is not None:
        pid = f" (pid {serving})" if serving else ""
        raise FailedPrecondition(
            f"a joblet daemon{pid} serves {layout.root}: stop it first (SIGTERM)"
        )
    cgroups = create_cgroup_manager(config.cgroup.mount_root, config.cgroup.parent)
    report = TeardownReport()
    report.killed, report.launcher_pid = asyncio.run(_end_jobs_and_launcher(layout, cgroups, force))
    report.cgroups = report.attempt("cgroups", lambda: _remove_groups(report, cgroups, layout))
    if not report.problems:
        _forget_ownership(config.cgroup.parent, layout.root)
    node_id = config.server.node_id or _read_node_id(layout)
    if node_id:
        report.links = report.attempt(
            "network", lambda: remove_stopped_daemon_network(str(layout.network), node_id)
        )
    for base in (layout.volumes, layout.jobs, layout.run):
        report.mounts += report.attempt("mounts", functools.partial(unmount_below, base))
    report.mounts += report.attempt("mounts", functools.partial(_release_jobs_dir, layout))
    report.mounts += report.attempt("mounts", functools.partial(_close_workspaces, layout))
    report.loops = report.attempt("loop devices", lambda: detach_loops_under(layout.volumes))
    return report


def _close_workspaces(layout: RootLayout) -> list[str]:
    return [str(layout.workspaces)] if close_quota_store(layout) else []


def _release_jobs_dir(layout: RootLayout) -> list[str]:
    return [str(layout.jobs)] if release_jobs_dir(layout) else []


def _forget_ownership(parent: str, root: Path) -> None:
    """Drop the parent's owner record once nothing of this root is left in it.
    A record naming another root belongs to that root's daemon: it stays."""
    record = read_owner(parent)
    if record is not None and record.root == normal_root(root):
        forget_owner(parent)


def _remove_groups(report: TeardownReport, cgroups: CgroupManager, layout: RootLayout) -> list[str]:
    removal = remove_own(cgroups, own_jobs(layout.jobs))
    if removal.foreign:
        report.problems.append(
            f"cgroups: the parent also holds {len(removal.foreign)} job group(s) not made"
            f" under {layout.root}; they and the parent stay"
        )
    return removal.removed


async def _end_jobs_and_launcher(
    layout: RootLayout, cgroups: CgroupManager, force: bool
) -> tuple[list[str], int]:
    """Refuse while jobs run (unless `force`: kill them), then make the
    launcher exit; the jobs killed and the launcher's pid (0: none ran)."""
    launcher = await _connect(layout)
    try:
        running = set(await launcher.running()) if launcher else set()
        running |= _jobs_with_processes(cgroups, own_jobs(layout.jobs))
        if running and not force:
            ids = ", ".join(sorted(running))
            raise FailedPrecondition(
                f"{len(running)} job(s) still run under {layout.root} ({ids}):"
                " stop them, or pass --force to kill them"
            )
        await asyncio.to_thread(_kill_through_cgroups, cgroups, running)
        if launcher is None:
            return sorted(running), _stop_unanswering_launcher(layout)
        return sorted(running), await _stop_launcher(launcher, cgroups)
    finally:
        if launcher is not None:
            await launcher.close()


async def _connect(layout: RootLayout) -> LauncherClient | None:
    socket_path = str(layout.launcher_socket)
    if not os.path.exists(socket_path):
        return None
    try:
        client = await LauncherClient.connect(socket_path)
    except Unavailable:
        return None  # a stale socket: nobody listens
    try:
        await asyncio.wait_for(client.ping(), PING_S)
    except (JobletError, TimeoutError):
        await client.close()
        return None
    return client


def _jobs_with_processes(cgroups: CgroupManager, is_own: IsOwn) -> set[str]:
    """This root's jobs with a process in their cgroup, whichever launcher
    started them."""
    busy: set[str] = set()
    for job_id in filter(is_own, cgroups.leftover_job_ids()):
        group = cgroups.open(job_id)
        if group is not None and group.pids():
            busy.add(job_id)
    return busy


def _kill_through_cgroups(cgroups: CgroupManager, job_ids: set[str]) -> None:
    """SIGKILL every process of the jobs; the launcher reaps their inits and
    records how they ended, so the next daemon reports them killed."""
    for job_id in sorted(job_ids):
        group = cgroups.open(job_id)
        if group is not None:
            group.kill_all()


async def _stop_launcher(launcher: LauncherClient, cgroups: CgroupManager) -> int:
    """Ask the launcher to exit once its jobs are reaped; its pid once gone."""
    pid = await launcher.ping()
    for job_id in await launcher.exit():
        if cgroups.open(job_id) is None:  # a host without usable cgroups
            with contextlib.suppress(JobletError):
                await launcher.signal(job_id, signal.SIGKILL)
    if not await launcher.wait_closed_by_launcher(LAUNCHER_EXIT_S):
        raise IsolationError(f"the launcher (pid {pid}) did not exit in {LAUNCHER_EXIT_S:.0f}s")
    if not await asyncio.to_thread(wait_process_gone, pid, LAUNCHER_EXIT_S):
        raise IsolationError(f"the launcher (pid {pid}) is still there")
    return pid


def _stop_unanswering_launcher(layout: RootLayout) -> int:
    """A launcher of this root that no longer answers on its socket (the
    socket was removed): ended by signal. 0 when none runs."""
    pid_file = _pid_file(layout)
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return 0
    if not _is_launcher_of(pid, layout):
        pid_file.unlink(missing_ok=True)
        return 0
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        if wait_process_gone(pid, LAUNCHER_EXIT_S / 2):
            pid_file.unlink(missing_ok=True)
            return pid
    raise IsolationError(f"the launcher (pid {pid}) is still there")


def _pid_file(layout: RootLayout) -> Path:
    return layout.run / "launcher" / records.PID_FILE


def _is_launcher_of(pid: int, layout: RootLayout, procfs: str = "/proc") -> bool:
    """Whether `pid` runs the launcher with this root's socket (not a process
    that got the pid of one that ended)."""
    try:
        with open(f"{procfs}/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return b"joblet.isolation.launcher" in argv and os.fsencode(layout.launcher_socket) in argv


def _read_node_id(layout: RootLayout) -> str:
    try:
        return (layout.state / "node-id").read_text().strip()
    except OSError:
        return ""


_OCTAL = re.compile(r"\\([0-7]{3})")


def mount_points(mountinfo: str) -> list[str]:
    """The mount points of a /proc/<pid>/mountinfo text, unescaped (proc(5))."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(_OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[4]))
    return points


def below(points: list[str], base: str) -> list[str]:
    """The points strictly below `base`, deepest first (the order to unmount
    in); a point mounted twice is listed twice. `base` itself is left: it
    may be a disk the operator mounted there."""
    prefix = base.rstrip("/") + "/"
    return sorted((p for p in points if p.startswith(prefix)), key=lambda p: -p.count("/"))


def unmount_below(base: Path, procfs: str = "/proc") -> list[str]:
    """Unmount everything strictly below `base`; the points unmounted. A busy
    mount is detached (MNT_DETACH): it goes once its last user does."""
    with open(f"{procfs}/self/mountinfo") as f:
        points = below(mount_points(f.read()), os.path.realpath(base))
    done: list[str] = []
    for point in points:
        try:
            libc.umount2(point)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # gone with its parent already
                continue
            if exc.errno != errno.EBUSY:
                raise
            libc.umount2(point, libc.MNT_DETACH)
        done.append(point)
    return done


def detach_loops_under(images_dir: Path, sys_block: str = "/sys/block") -> list[str]:
    """Detach the loop devices whose backing file is under `images_dir`; the
    devices detached here. The unmounts just done detach theirs (autoclear);
    this catches devices left bound without a mount (a crash between attach
    and mount)."""
    found = loop.wait_unbound(os.path.realpath(images_dir), LOOP_WAIT_S, sys_block)
    for device in found:
        loop.detach(f"/dev/{device}")
    return found
