"""cgroup v1 backend: one group per controller hierarchy,
<hierarchy>/<parent>/job-<id>; co-mounted controllers ("cpu,cpuacct") share one."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from joblet.errors import IsolationError
from joblet.resources import _fs
from joblet.resources._names import job_dir_name, job_ids_under, parent_path
from joblet.resources.detect import V1_REQUIRED
from joblet.resources.device_rules import v1_writes
from joblet.resources.interface import CgroupStats, Limits
from joblet.resources.limits import v1_counting_writes, v1_limit_writes
from joblet.resources.stats import parse_flat_keyed, v1_stats

log = logging.getLogger(__name__)

_STAT_FILES = {
    "cpu": ("cpu.stat",),
    "cpuacct": ("cpuacct.usage", "cpuacct.stat"),
    "memory": (
        "memory.usage_in_bytes", "memory.limit_in_bytes",
        "memory.max_usage_in_bytes", "memory.oom_control",
    ),
    "pids": ("pids.current", "pids.max"),
    "blkio": ("blkio.throttle.io_service_bytes_recursive",),
}  # fmt: skip


class V1JobCgroup:
    def __init__(self, job_id: str, dirs: Mapping[str, Path], kill_timeout_s: float = 5.0) -> None:
        self.job_id = job_id
        self.dirs = dict(dirs)  # controller -> the job's group in its hierarchy
        self._kill_timeout_s = kill_timeout_s

    def hierarchies(self) -> list[Path]:
        return sorted(set(self.dirs.values()))

    def procs_files(self) -> tuple[Path, ...]:
        return tuple(d / "cgroup.procs" for d in self.hierarchies())

    def pids(self) -> list[int]:
        # Every process of the job is in each hierarchy (it cannot move
        # itself): one is enough. Killing still checks them all.
        return sorted(_fs.read_pids(self.dirs.get("pids") or self.hierarchies()[0]))

    def read_stats(self) -> CgroupStats:
        texts: dict[str, str] = {}
        for controller, names in _STAT_FILES.items():
            for name in names:
                text = _fs.read_text(self.dirs[controller] / name)
                if text is not None:
                    texts[name] = text
        return v1_stats(texts)

    def oom_killed(self) -> bool:
        # oom_kill in memory.oom_control exists since Linux 4.13; failcnt is no
        # substitute (it counts every time reclaim hit the limit).
        text = _fs.read_text(self.dirs["memory"] / "memory.oom_control") or ""
        return parse_flat_keyed(text).get("oom_kill", 0) > 0

    def kill_all(self) -> None:
        """Freeze, SIGKILL everything, thaw, until every hierarchy is empty.

        Frozen v1 tasks cannot die, and a frozen parent stops forks racing the
        kill; every sub-group is thawed too, since a group the job froze itself
        stays frozen when its parent thaws.
        """
        deadline = time.monotonic() + self._kill_timeout_s
        while self._all_pids():
            if time.monotonic() > deadline:
                raise IsolationError(f"processes of job {self.job_id} survived kill: {self.pids()}")
            self._set_freezer("FROZEN")
            _fs.kill_pids(self._all_pids())
            self._set_freezer("THAWED")
            _fs.wait_for(lambda: not self._all_pids(), 0.2)

    def remove(self) -> None:
        for hierarchy in self.hierarchies():
            _fs.remove_tree(hierarchy)

    def remove_if_empty(self) -> bool:
        """One rmdir per hierarchy, no reading: True when every group is gone.
        A job whose init has exited has lost its pid namespace and with it every
        process, so this is how most jobs end; a busy group (a process still
        exiting, a sub-group) answers EBUSY and is left for kill_all."""
        return all(_fs.rmdir_once(hierarchy) for hierarchy in self.hierarchies())

    def _all_pids(self) -> set[int]:
        pids: set[int] = set()
        for hierarchy in self.hierarchies():
            pids |= _fs.read_pids(hierarchy)
        return pids

    def _set_freezer(self, state: str) -> None:
        freezer = self.dirs.get("freezer")
        if freezer is None or not freezer.is_dir():
            return
        if state == "THAWED":
            for group in reversed(_fs.walk_groups(freezer)):
                _fs.write_value(group / "freezer.state", state)
            return
        _fs.write_value(freezer / "freezer.state", state)
        # FREEZING -> FROZEN is asynchronous; kill anyway after the wait (a task
        # in uninterruptible sleep can hold it), the outer loop retries.
        _fs.wait_for(lambda: (_fs.read_text(freezer / "freezer.state") or "").strip() == state, 1.0)


class V1CgroupManager:
    version = "v1"

    def __init__(self, mounts: Mapping[str, Path], parent: str) -> None:
        missing = V1_REQUIRED - mounts.keys()
        if missing:
            raise IsolationError(f"v1 controllers not mounted: {sorted(missing)}")
        self._parent = parent_path(parent)
        # The devices controller is optional: without it no device filter
        # applies, and jobs that need one (GPUs) are refused.
        wanted = V1_REQUIRED | ({"devices"} & mounts.keys())
        self.parent_dirs = {c: mounts[c] / self._parent for c in sorted(wanted)}
        self.device_filter = "v1" if "devices" in self.parent_dirs else ""
        self._cpuset_root = mounts["cpuset"]
        # The parent's cpuset, read when the parent is prepared: each job's
        # start then costs no mkdir of the parent and no read of it.
        self._parent_cpuset: tuple[str, str] | None = None
        self._present: dict[Path, bool] = {}  # optional control files, by path in the parent

    def create(self, job_id: str, limits: Limits) -> V1JobCgroup:
        fresh = self._parent_cpuset is None
        try:
            return self._create(job_id, limits)
        except IsolationError:
            if fresh:
                raise
        # The parent's cpuset is read once; CPUs or memory nodes taken away
        # since (hotplug) make the job's copy invalid: read it again, once.
        self._parent_cpuset = None
        return self._create(job_id, limits)

    def _create(self, job_id: str, limits: Limits) -> V1JobCgroup:
        if self._parent_cpuset is None:
            self._parent_cpuset = self._prepare_parent()
        cpus, mems = self._parent_cpuset
        writes = v1_limit_writes(limits, parent_cpus=cpus, parent_mems=mems)
        name = job_dir_name(job_id)
        job = V1JobCgroup(job_id, {c: d / name for c, d in self.parent_dirs.items()})
        try:
            self._make_groups(job)
            for w in writes:
                target = job.dirs[w.controller] / w.filename
                if w.required or self._offered(w.controller, w.filename, target):
                    _fs.write_value(target, w.value)
            for w in v1_counting_writes(limits):
                if w.controller in job.dirs:
                    try:
                        _fs.write_value(job.dirs[w.controller] / w.filename, w.value)
                    except IsolationError as exc:
                        log.debug("job %s: no IO counting rule: %s", job_id, exc)
            if limits.devices and self.device_filter:
                for filename, value in v1_writes(limits.devices):
                    _fs.write_value(job.dirs["devices"] / filename, value)
        except IsolationError:
            job.remove()
            raise
        return job

    def open(self, job_id: str) -> V1JobCgroup | None:
        name = job_dir_name(job_id)
        dirs = {c: d / name for c, d in self.parent_dirs.items()}
        return V1JobCgroup(job_id, dirs) if any(d.is_dir() for d in dirs.values()) else None

    def leftover_job_ids(self) -> list[str]:
        found: set[str] = set()
        for parent in set(self.parent_dirs.values()):
            found |= job_ids_under(parent)
        return sorted(found)

    def remove_parent(self) -> None:
        # Every hierarchy is tried: one busy group leaves the others clean.
        failed: list[IsolationError] = []
        for parent in sorted(set(self.parent_dirs.values())):
            try:
                _fs.remove_tree(parent, _fs.PARENT_BUSY_WAIT_S)
            except IsolationError as exc:
                failed.append(exc)
        if failed:
            raise failed[0]

    def _make_groups(self, job: V1JobCgroup) -> None:
        """mkdir the job's group in each hierarchy. A parent removed behind the
        daemon's back (teardown, an operator) is prepared again, once."""
        # Co-mounted controllers ("cpu,cpuacct") share one group: one mkdir.
        firsts = {hierarchy: controller for controller, hierarchy in sorted(job.dirs.items())[::-1]}
        for hierarchy, controller in sorted(firsts.items()):
            try:
                _fs.make_dir(hierarchy, parents=False)
            except IsolationError:
                if self.parent_dirs[controller].is_dir():
                    raise
                self._parent_cpuset = self._prepare_parent()
                _fs.make_dir(hierarchy, parents=False)

    def _offered(self, controller: str, filename: str, target: Path) -> bool:
        """Whether the kernel offers an optional control file (memsw needs swap
        accounting): the same for every job group, so asked once."""
        key = self.parent_dirs[controller] / filename
        present = self._present.get(key)
        if present is None:
            present = self._present[key] = target.exists()
        return present

    def _prepare_parent(self) -> tuple[str, str]:
        """Make the parent in every hierarchy; its cpuset (cpus, mems)."""
        for parent in set(self.parent_dirs.values()):
            _fs.make_dir(parent)
        # v1 creates cpuset groups with empty cpus/mems: copy them down each level.
        group = self._cpuset_root
        for part in self._parent.parts:
            child = group / part
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not (_fs.read_text(child / name) or "").strip():
                    _fs.write_value(child / name, (_fs.read_text(group / name) or "").strip())
            group = child
        cpuset_parent = self.parent_dirs["cpuset"]
        return (
            (_fs.read_text(cpuset_parent / "cpuset.cpus") or "").strip(),
            (_fs.read_text(cpuset_parent / "cpuset.mems") or "").strip(),
        )
