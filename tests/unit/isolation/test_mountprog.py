"""The compiled root plan: root-independent steps, relative targets, one shared base."""

from __future__ import annotations

import os
import subprocess
import sys

from joblet.isolation import libc, mountprog
from joblet.isolation.rootfs import HostEntry, Kind, RootInputs, base_key, base_plan

ETC = {"hostname": b"job\n", "hosts": b"127.0.0.1\tlocalhost\n", "resolv.conf": b""}


def _inputs(root: str, workspace: str = "/host/jobs/a/work", hosts_file: str = "") -> RootInputs:
    allowed = {
        "/usr": HostEntry(Kind.DIR),
        "/bin": HostEntry(Kind.SYMLINK, "usr/bin"),
        "/etc/passwd": HostEntry(Kind.FILE),
        "/etc/hosts": HostEntry(Kind.FILE),  # shadowed by the job's own
    }
    return RootInputs(root, allowed, workspace, ETC, 1 << 20, hosts_file=hosts_file)


def _by_kind(program: mountprog.Program, kind: int) -> list[tuple[object, ...]]:
    return [args for k, args, _ in program if k == kind]


def test_program_does_not_depend_on_the_root_path() -> None:
    first = mountprog.compile_root(_inputs("/jobs/a/root"))
    second = mountprog.compile_root(_inputs("/somewhere/else"))
    assert first == second
    assert not any(b"/jobs/a/root" in repr(step).encode() for step in first)


def test_targets_inside_the_root_are_relative_and_sources_absolute() -> None:
    program = mountprog.compile_root(_inputs("/jobs/a/root"))
    mounts = {args[1]: args for args in _by_kind(program, mountprog.MOUNT)}
    assert mounts[b"usr"][0] == b"/usr"
    assert mounts[b"work"][0] == b"/host/jobs/a/work"
    # The job's /proc entries, bound by the init from its own listing.
    proc_steps = _by_kind(program, mountprog.PROC)
    assert len(proc_steps) == 2  # when the shared part is built, and again for the job
    assert (
        proc_steps[0][0] == b"proc" and b"sys" in proc_steps[0][1] and b"kcore" in proc_steps[0][2]
    )
    assert mounts[b"/"][3] == libc.MS_REC | libc.MS_PRIVATE  # the only absolute target
    assert [args[1] for args in _by_kind(program, mountprog.MOUNT) if args[1].startswith(b"/")] == [
        b"/"
    ]


def test_the_root_is_mounted_before_anything_is_made_in_it() -> None:
    program = mountprog.compile_root(_inputs("/r"))
    kinds = [kind for kind, _, _ in program]
    root_at = kinds.index(mountprog.MOUNT_ROOT)
    assert kinds.count(mountprog.MOUNT_ROOT) == 1
    assert all(kind == mountprog.MOUNT for kind in kinds[:root_at])
    assert _by_kind(program, mountprog.MOUNT_ROOT)[0][1] == b"tmpfs"


def test_generated_etc_files_are_written_not_bound() -> None:
    program = mountprog.compile_root(_inputs("/r"))
    assert (b"etc/hostname", ETC["hostname"]) in _by_kind(program, mountprog.WRITE)
    assert (b"etc/hosts", ETC["hosts"]) in _by_kind(program, mountprog.WRITE)
    # The host's /etc/hosts, although allowed, would hide the job's own.
    assert not any(args[0] == b"/etc/hosts" for args in _by_kind(program, mountprog.MOUNT))


def test_a_shared_hosts_file_is_bound_read_only() -> None:
    program = mountprog.compile_root(_inputs("/r", hosts_file="/net/n1/hosts"))
    assert not any(args[0] == b"etc/hosts" for args in _by_kind(program, mountprog.WRITE))
    steps = list(program)
    at = next(
        i for i, (k, a, _) in enumerate(steps) if k == mountprog.MOUNT and a[0] == b"/net/n1/hosts"
    )
    kind, args, _ = steps[at + 1]
    assert kind == mountprog.PROTECT and args[0] == b"etc/hosts"


def test_the_shared_part_is_compiled_once() -> None:
    inputs = _inputs("/r", workspace="/w1")
    first = mountprog.compile_root(inputs)
    second = mountprog.compile_root(_inputs("/r", workspace="/w2"))
    shared = len(base_plan(*base_key(inputs))[0])
    assert shared > 30
    assert all(a is b for a, b in zip(first[:shared], second[:shared], strict=True))
    assert first[shared:] != second[shared:]


def test_the_launcher_does_not_import_grpc() -> None:
    # Every job is cloned from the launcher: its size is paid at each clone and exec.
    code = "import sys, joblet.isolation.launcher; print('grpc' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-c", code]
    result = subprocess.run(argv, check=False, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
