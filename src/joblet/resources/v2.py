"""cgroup v2 backend: one unified tree, <root>/<parent>/job-<id>."""

from __future__ import annotations

import os
import time
from pathlib import Path

from joblet.errors import IsolationError
from joblet.resources import _fs
from joblet.resources._names import job_dir_name, job_ids_under, parent_path
from joblet.resources.bpf_devices import apply_device_filter, bpf_unavailable
from joblet.resources.interface import CgroupStats, Limits
from joblet.resources.limits import v2_limit_writes
from joblet.resources.stats import parse_flat_keyed, v2_stats

WANTED = ("cpu", "cpuset", "memory", "io", "pids")
REQUIRED = frozenset({"cpu", "memory", "io", "pids"})
_STAT_FILES = (
    "cpu.stat", "memory.current", "memory.max", "memory.peak", "memory.events",
    "pids.current", "pids.max", "io.stat",
)  # fmt: skip


class V2JobCgroup:
    def __init__(self, job_id: str, path: Path, kill_timeout_s: float = 5.0) -> None:
        self.job_id = job_id
        self.path = path
        self._kill_timeout_s = kill_timeout_s

    def procs_files(self) -> tuple[Path, ...]:
        return (self.path / "cgroup.procs",)

    def pids(self) -> list[int]:
        return sorted(_fs.read_pids(self.path))

    def read_stats(self) -> CgroupStats:
        texts = {name: _fs.read_text(self.path / name) for name in _STAT_FILES}
        return v2_stats({name: text for name, text in texts.items() if text is not None})

    def oom_killed(self) -> bool:
        events = parse_flat_keyed(_fs.read_text(self.path / "memory.events") or "")
        return events.get("oom_kill", 0) > 0

    def kill_all(self) -> None:
        if not self.path.is_dir():
            return
        if (self.path / "cgroup.kill").exists():
            # Linux >= 5.14: kills the whole subtree, frozen groups included.
            _fs.write_value(self.path / "cgroup.kill", "1")
        else:
            self._freeze_and_kill()
        if not _fs.wait_for(self._empty, self._kill_timeout_s):
            raise IsolationError(f"processes of job {self.job_id} survived kill: {self.pids()}")

    def remove(self) -> None:
        _fs.remove_tree(self.path)

    def remove_if_empty(self) -> bool:
        return _fs.rmdir_once(self.path)

    def _empty(self) -> bool:
        return not _fs.read_pids(self.path)

    def _freeze_and_kill(self) -> None:
        deadline = time.monotonic() + self._kill_timeout_s
        while not self._empty() and time.monotonic() < deadline:
            _fs.write_value(self.path / "cgroup.freeze", "1")
            _fs.wait_for(self._frozen, 1.0)
            _fs.kill_pids(_fs.read_pids(self.path))
            # v2 freezer lets SIGKILL through, but a sub-group frozen by the
            # job itself keeps its own freeze: thaw every group.
            for group in reversed(_fs.walk_groups(self.path)):
                _fs.write_value(group / "cgroup.freeze", "0")

    def _frozen(self) -> bool:
        events = parse_flat_keyed(_fs.read_text(self.path / "cgroup.events") or "")
        return events.get("frozen", 0) == 1


class V2CgroupManager:
    version = "v2"

    def __init__(self, mount_root: Path, parent: str) -> None:
        self.mount_root = mount_root
        self.parent_dir = mount_root / parent_path(parent)
        self._device_filter: str | None = None
        self.device_filter_reason = ""

    @property
    def device_filter(self) -> str:
        """ "bpf" once a probe program loaded and attached to a group of ours
        (asked once, on first use); "" with `device_filter_reason` else."""
        if self._device_filter is None:
            self.device_filter_reason = bpf_unavailable() or self._probe_attach()
            self._device_filter = "" if self.device_filter_reason else "bpf"
        return self._device_filter

    def _probe_attach(self) -> str:
        """Why a device program cannot be attached under our parent ("" if it can):
        a host (a container) may allow loading programs but not attaching them."""
        probe = self.parent_dir / f"device-probe-{os.getpid()}"
        try:
            _fs.make_dir(probe)
            try:
                apply_device_filter(probe, ())
            finally:
                probe.rmdir()
        except (IsolationError, OSError) as exc:
            return str(exc)
        return ""

    def create(self, job_id: str, limits: Limits) -> V2JobCgroup:
        writes = v2_limit_writes(limits)
        self._prepare_parent()
        job = V2JobCgroup(job_id, self.parent_dir / job_dir_name(job_id))
        _fs.make_dir(job.path)
        try:
            for w in writes:
                if w.required or (job.path / w.filename).exists():
                    _fs.write_value(job.path / w.filename, w.value)
            if limits.devices and self.device_filter:
                apply_device_filter(job.path, limits.devices)
        except IsolationError:
            job.remove()
            raise
        return job

    def open(self, job_id: str) -> V2JobCgroup | None:
        path = self.parent_dir / job_dir_name(job_id)
        return V2JobCgroup(job_id, path) if path.is_dir() else None

    def leftover_job_ids(self) -> list[str]:
        return sorted(job_ids_under(self.parent_dir))

    def remove_parent(self) -> None:
        _fs.remove_tree(self.parent_dir, _fs.PARENT_BUSY_WAIT_S)

    def _prepare_parent(self) -> None:
        """Create the parent and enable our controllers on every level down to it,
        so that job groups below the parent get the controllers' files."""
        _fs.make_dir(self.parent_dir)
        group = self.mount_root
        for part in (None, *self.parent_dir.relative_to(self.mount_root).parts):
            group = group if part is None else group / part
            _enable_controllers(group)


def _enable_controllers(group: Path) -> None:
    available = set((_fs.read_text(group / "cgroup.controllers") or "").split())
    enabled = set((_fs.read_text(group / "cgroup.subtree_control") or "").split())
    missing = REQUIRED - available
    if missing:
        raise IsolationError(f"cgroup {group} lacks controllers {sorted(missing)}")
    todo = [f"+{c}" for c in WANTED if c in available and c not in enabled]
    if todo:
        _fs.write_value(group / "cgroup.subtree_control", " ".join(todo))
