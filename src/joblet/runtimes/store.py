"""Installed runtimes under ROOT/runtimes, versioned, pinned by the jobs using them.

    runtimes/<name>/<build_id>/tree          the tree jobs mount read-only at /opt/runtime
    runtimes/<name>/<build_id>/runtime.json  its spec and what the install measured
    runtimes/<name>/current -> <build_id>    which build new jobs get (replaced atomically)
    runtimes/.staging/<id>/{src,tree}        an install in progress, gone when it ends

A job pins the build it resolved until it ends, so `--force` reinstalls do
not pull a tree from under a running job: the old build stays until its last
job releases it. A name is checked against the allowlist before it is joined
to any path. Every decision is made under one lock; deleting trees happens
outside it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from joblet.errors import Aborted, AlreadyExists, FailedPrecondition, JobletError, NotFound
from joblet.jobs.tree_removal import remove_tree
from joblet.runtimes.record import (
    BUILD_ID,
    RECORD_FILE,
    TREE_DIR,
    InstalledRuntime,
    parse_record,
    record_json,
)
from joblet.runtimes.reference import check_name, normalize, parse_reference
from joblet.runtimes.seams import RuntimeMount
from joblet.runtimes.verify import tree_usage

log = logging.getLogger(__name__)

CURRENT = "current"
# How an install's test job names the build it is testing. No user reference
# can have this form (the grammar refuses '!'), and only a staged build has one.
TRIAL_PREFIX = "!staged/"
STAGING = ".staging"
_DIR_MODE = 0o755

Defer = Callable[[Callable[[], None]], None]


def _inline(work: Callable[[], None]) -> None:
    work()


@dataclass(frozen=True)
class Staging:
    """An install's private directories: sources in, built tree out."""

    path: Path

    @property
    def src(self) -> Path:
        return self.path / "src"

    @property
    def tree(self) -> Path:
        return self.path / TREE_DIR


class RuntimeStore:
    """The installed runtimes; implements seams.RuntimeResolver."""

    def __init__(
        self,
        root: Path,
        host_arch: str,
        has_gpu: Callable[[], bool] = lambda: False,
        defer: Defer = _inline,
    ) -> None:
        self.root = root
        self.host_arch = host_arch
        self._has_gpu = has_gpu
        self._defer = defer
        self._lock = threading.Lock()
        self._current: dict[str, InstalledRuntime] = {}
        self._pins: dict[str, tuple[str, str]] = {}  # job id -> (name, build id)
        self._building: dict[str, str] = {}  # name -> build job id ("" until known)
        self._trials: dict[str, InstalledRuntime] = {}  # staged builds under test

    # --- loading -------------------------------------------------------------------

    def load(self) -> None:
        """Read every current record; drop what an interrupted install left in staging."""
        self.root.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        remove_tree(self.root / STAGING)
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith("."):
                continue
            record = self._read_current(entry.name)
            if record is not None:
                self._current[record.name] = record

    def _read_current(self, name: str) -> InstalledRuntime | None:
        try:
            check_name(name)
            build_id = os.readlink(self.root / name / CURRENT)
            if BUILD_ID.fullmatch(build_id) is None:
                raise ValueError(f"bad build id {build_id!r}")
            return self._read_build(name, build_id)
        except (OSError, ValueError, JobletError) as exc:
            log.warning("runtime %s is not usable (left as it is): %s", name[:80], exc)
            return None

    def _read_build(self, name: str, build_id: str) -> InstalledRuntime:
        text = (self.root / name / build_id / RECORD_FILE).read_text()
        record = parse_record(text)
        if record.name != name or record.build_id != build_id:
            raise ValueError("runtime.json names another runtime")
        return record

    def collect_garbage(self) -> None:
        """Delete builds that are neither current nor pinned (after jobs re-pinned
        theirs), and what a first install cut short left. A runtime whose current
        build cannot be read is left for an operator to look at."""
        doomed: list[Path] = []
        with self._lock:
            pinned = set(self._pins.values())
            for entry in self.root.iterdir():
                if not _is_name(entry.name) or entry.is_symlink() or not entry.is_dir():
                    continue  # not a runtime's: never ours to delete
                current = self._current.get(entry.name)
                if current is None and (entry / CURRENT).is_symlink():
                    continue
                keep = current.build_id if current else None
                for build in entry.iterdir():
                    if build.name in (CURRENT, keep):
                        continue
                    if (entry.name, build.name) not in pinned:
                        doomed.append(build)
                if current is None and not any(name == entry.name for name, _ in pinned):
                    doomed.append(entry)
        for path in doomed:
            log.info("removing unused runtime build %s", path)
            remove_tree(path)

    # --- reading -------------------------------------------------------------------

    def installed(self) -> list[InstalledRuntime]:
        with self._lock:
            return sorted(self._current.values(), key=lambda r: r.name)

    def get(self, name: str) -> InstalledRuntime | None:
        with self._lock:
            return self._current.get(name)

    def building(self, name: str) -> bool:
        with self._lock:
            return name in self._building

    def available(self, record: InstalledRuntime) -> bool:
        """Whether a job could use it now: not being rebuilt, this host's architecture."""
        return not self.building(record.name) and self.requirement_problem(record) is None

    def users(self, name: str) -> list[str]:
        """The jobs that hold a build of `name`."""
        with self._lock:
            return sorted(job for job, (n, _) in self._pins.items() if n == name)

    # --- the resolver --------------------------------------------------------------

    def acquire(self, reference: str, job_id: str) -> RuntimeMount:
        trial = self._trials.get(reference)
        name = trial.name if trial is not None else self._resolve_name(reference)
        with self._lock:
            record = trial or self._current.get(name)
            if record is None:
                raise NotFound(f"runtime {name} is not installed")
            problem = self.requirement_problem(record)
            if problem:
                raise FailedPrecondition(problem)
            self._pins[job_id] = (name, record.build_id)
        return self._mount(record)

    def _resolve_name(self, reference: str) -> str:
        ref = parse_reference(reference)
        if ref.architecture and ref.architecture != self.host_arch:
            raise FailedPrecondition(
                f"runtime {reference} asks for {ref.architecture}; this host is {self.host_arch}"
            )
        return ref.name

    def reacquire(self, name: str, build_id: str, job_id: str) -> RuntimeMount:
        check_name(name)
        if BUILD_ID.fullmatch(build_id) is None:
            raise NotFound(f"runtime {name} has no build {build_id[:40]!r}")
        with self._lock:
            try:
                record = self._read_build(name, build_id)
            except (OSError, ValueError, JobletError) as exc:
                raise NotFound(f"runtime {name} build {build_id} is gone") from exc
            self._pins[job_id] = (name, build_id)
        return self._mount(record)

    def release(self, job_id: str) -> None:
        with self._lock:
            pin = self._pins.pop(job_id, None)
            if pin is None or self._still_used(*pin):
                return
        self._defer(lambda: self._delete_build(*pin))

    def _still_used(self, name: str, build_id: str) -> bool:
        current = self._current.get(name)
        if current is not None and current.build_id == build_id:
            return True
        if f"{TRIAL_PREFIX}{build_id}" in self._trials:
            return True
        return (name, build_id) in self._pins.values()

    def _delete_build(self, name: str, build_id: str) -> None:
        with self._lock:
            if self._still_used(name, build_id):
                return
        log.info("removing superseded build %s of runtime %s", build_id, name)
        for failure in remove_tree(self.root / name / build_id):
            log.warning("runtime build left behind: %s", failure)

    def requirement_problem(self, record: InstalledRuntime) -> str | None:
        """Why jobs on this host cannot use `record` (architecture, GPU), or None."""
        spec = record.spec
        if spec.architectures and self.host_arch not in spec.architectures:
            arches = ", ".join(spec.architectures)
            return f"runtime {spec.name} is built for {arches}, not this host's {self.host_arch}"
        if spec.gpu and not self._has_gpu():
            return f"runtime {spec.name} needs a GPU and this host has none"
        return None

    def _mount(self, record: InstalledRuntime) -> RuntimeMount:
        tree = self.root / record.name / record.build_id / TREE_DIR
        extra = tuple((str(tree / m.source), m.target) for m in record.spec.mounts)
        return RuntimeMount(
            name=record.name,
            build_id=record.build_id,
            tree=str(tree),
            extra_mounts=extra,
            environment=record.spec.environment,
        )

    # --- installing ------------------------------------------------------------------

    @contextlib.contextmanager
    def begin_build(self, name: str, force: bool) -> Iterator[Staging]:
        """Claim `name` for one install and give it staging dirs, removed at the end.
        ABORTED while another install of it runs; ALREADY_EXISTS unless `force`."""
        check_name(name)
        with self._lock:
            if name in self._building:
                job = self._building[name]
                running = f" (build job {job})" if job else ""
                raise Aborted(f"runtime {name} is already being installed{running}")
            if name in self._current and not force:
                raise AlreadyExists(
                    f"runtime {name} is already installed: use forceReinstall to replace it"
                )
            self._building[name] = ""
        staging = Staging(self.root / STAGING / uuid.uuid4().hex)
        try:
            for path in (staging.path.parent, staging.path, staging.src, staging.tree):
                path.mkdir(mode=_DIR_MODE, exist_ok=path == staging.path.parent)
                os.chmod(path, _DIR_MODE)
            yield staging
        finally:
            remove_tree(staging.path)
            with self._lock:
                self._building.pop(name, None)

    def set_build_job(self, name: str, job_id: str) -> None:
        with self._lock:
            if name in self._building:
                self._building[name] = job_id

    def commit(self, staging: Staging, record: InstalledRuntime) -> None:
        """Stage and activate in one go."""
        self.stage(staging, record)
        self.activate(record)

    def stage(self, staging: Staging, record: InstalledRuntime) -> str:
        """Move the staged tree to its build directory, not yet current: the
        reference returned lets one job (the install's test) acquire it."""
        name = check_name(record.name)
        build_dir = self.root / name / record.build_id
        (self.root / name).mkdir(mode=_DIR_MODE, exist_ok=True)
        build_dir.mkdir(mode=_DIR_MODE)
        os.rename(staging.tree, build_dir / TREE_DIR)
        _write_atomically(build_dir / RECORD_FILE, record_json(record))
        reference = f"{TRIAL_PREFIX}{record.build_id}"
        with self._lock:
            self._trials[reference] = record
        return reference

    def activate(self, record: InstalledRuntime) -> None:
        """Make a staged build the name's current one (an atomic rename of the pointer)."""
        name = record.name
        link = self.root / name / f".{CURRENT}-{record.build_id}"
        os.symlink(record.build_id, link)
        with self._lock:
            self._trials.pop(f"{TRIAL_PREFIX}{record.build_id}", None)
            os.replace(link, self.root / name / CURRENT)
            old = self._current.get(name)
            self._current[name] = record
            stale = old if old is not None and not self._still_used(name, old.build_id) else None
        if stale is not None:
            self._defer(lambda: self._delete_build(name, stale.build_id))

    def discard(self, record: InstalledRuntime) -> None:
        """Drop a staged build that failed its test (once its test job let go of it)."""
        with self._lock:
            self._trials.pop(f"{TRIAL_PREFIX}{record.build_id}", None)
            if self._still_used(record.name, record.build_id):
                return  # its test job still runs: released, it is deleted then
            orphan_name = record.name not in self._current
        remove_tree(self.root / record.name / record.build_id)
        if orphan_name:
            with contextlib.suppress(OSError):
                (self.root / record.name).rmdir()

    # --- removing --------------------------------------------------------------------

    def remove(self, reference: str) -> int:
        """Delete a runtime no job holds; the bytes really freed."""
        name = normalize(reference)
        parked = self.root / STAGING / f"removing-{uuid.uuid4().hex}"
        with self._lock:
            if name not in self._current:
                raise NotFound(f"runtime {name} is not installed")
            if name in self._building:
                raise FailedPrecondition(f"runtime {name} is being installed")
            users = sorted(job for job, (n, _) in self._pins.items() if n == name)
            if users:
                raise FailedPrecondition(f"runtime {name} is used by job(s) {', '.join(users)}")
            parked.parent.mkdir(mode=_DIR_MODE, exist_ok=True)
            os.rename(self.root / name, parked)  # new jobs cannot find it from here on
            del self._current[name]
        freed = tree_usage(parked)
        failures = remove_tree(parked)
        for failure in failures:
            log.warning("runtime %s left behind: %s", name, failure)
        return freed if not failures else freed - tree_usage(parked)


def _is_name(text: str) -> bool:
    try:
        check_name(text)
    except JobletError:
        return False
    return True


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
