"""The runtime and build parts of a job root's plan (pure)."""

from __future__ import annotations

import pytest

from joblet.isolation import libc, rootfs
from joblet.isolation.paths import UnsafePath
from joblet.isolation.rootfs import HostEntry, Kind, Mount, Overlay, Protect, RootInputs, Unmount
from joblet.isolation.runtime_root import BuildRoot, RuntimeRoot, check_target

ROOT = "/run/job-root"
ALLOWED = {
    "/usr": HostEntry(Kind.DIR),
    "/bin": HostEntry(Kind.SYMLINK, "usr/bin"),
    "/etc/ssl/certs": HostEntry(Kind.DIR),
    "/etc/passwd": HostEntry(Kind.FILE),
}


def inputs(**changes: object) -> RootInputs:
    base = RootInputs(root=ROOT, allowed=ALLOWED, workspace="/w", etc_files={},
                      tmp_size_bytes=1 << 20)  # fmt: skip
    return _replace(base, changes)


def _replace(base: RootInputs, changes: dict[str, object]) -> RootInputs:
    from dataclasses import replace

    return replace(base, **changes)  # type: ignore[arg-type]


def job_ops(**changes: object) -> list[rootfs.Op]:
    return rootfs.plan_root(inputs(**changes))


def test_tree_bound_read_only_at_opt_runtime() -> None:
    ops = job_ops(runtime=RuntimeRoot(tree="/rt/tree"))
    at = ops.index(Mount("/rt/tree", f"{ROOT}/opt/runtime", None, libc.MS_BIND | libc.MS_REC))
    assert ops[at + 1] == Protect(f"{ROOT}/opt/runtime", rootfs.RO_ATTRS)
    assert rootfs.RO_ATTRS & libc.MOUNT_ATTR_RDONLY and rootfs.RO_ATTRS & libc.MOUNT_ATTR_NOSUID


def test_idmapped_with_a_user_namespace() -> None:
    ops = job_ops(runtime=RuntimeRoot(tree="/rt/tree"), idmapped_volumes=True)
    mounts = [op for op in ops if isinstance(op, Mount) and op.source == "/rt/tree"]
    assert [m.idmapped for m in mounts] == [True]


def test_extra_mount_over_an_existing_host_path() -> None:
    runtime = RuntimeRoot(
        tree="/rt/tree",
        mounts=[("/rt/tree/lib", "/usr/lib/python3.11")],
        targets={"/usr/lib/python3.11": HostEntry(Kind.DIR)},
        source_dirs=frozenset({"/rt/tree/lib"}),
    )
    ops = job_ops(runtime=runtime)
    target = f"{ROOT}/usr/lib/python3.11"
    assert Protect(target, rootfs.RO_ATTRS) in ops
    # Nothing is made under the host's /usr: the mount point is the host's own.
    assert not [op for op in ops if isinstance(op, rootfs.MakeDir) and op.path.startswith(target)]


def test_a_mount_point_of_the_wrong_kind_under_a_host_bind_is_refused() -> None:
    targets = {"/usr": HostEntry(Kind.DIR), "/usr/lib": HostEntry(Kind.DIR),
               "/usr/lib/new": HostEntry(Kind.FILE)}  # fmt: skip
    runtime = RuntimeRoot(tree="/t", mounts=[("/t/x", "/usr/lib/new")], targets=targets,
                          source_dirs=frozenset({"/t/x"}))  # fmt: skip
    with pytest.raises(UnsafePath, match="without writing the host"):
        job_ops(runtime=runtime)


def test_a_missing_mount_point_under_a_host_bind_comes_from_a_skeleton() -> None:
    targets = {
        "/usr": HostEntry(Kind.DIR),
        "/usr/lib": HostEntry(Kind.DIR),
        "/usr/lib/jvm": HostEntry(Kind.MISSING),
        "/usr/lib/jvm/17": HostEntry(Kind.MISSING),
    }
    runtime = RuntimeRoot(tree="/t", mounts=[("/t/jdk", "/usr/lib/jvm/17")], targets=targets,
                          source_dirs=frozenset({"/t/jdk"}))  # fmt: skip
    ops = job_ops(runtime=runtime)
    skel = f"{ROOT}/.joblet-skeleton"
    lib = f"{ROOT}/usr/lib"
    overlay = Overlay(lib, lower=lib, over=f"{skel}/s0")
    assert overlay in ops and overlay.flags & libc.MS_RDONLY
    assert rootfs.MakeDir(f"{skel}/s0/jvm/17") in ops  # in the skeleton's tmpfs only
    assert not [op for op in ops if isinstance(op, rootfs.MakeDir) and op.path.startswith(lib)]
    bind = Mount("/t/jdk", f"{lib}/jvm/17", None, libc.MS_BIND | libc.MS_REC)
    assert ops.index(overlay) < ops.index(Unmount(skel)) < ops.index(bind)
    assert rootfs.overlay_options(overlay) == f"lowerdir={skel}/s0:{lib}"


def test_a_host_file_in_the_way_of_a_mount_point_is_refused() -> None:
    targets = {
        "/usr": HostEntry(Kind.DIR),
        "/usr/bin": HostEntry(Kind.DIR),
        "/usr/bin/env": HostEntry(Kind.FILE),
        "/usr/bin/env/x": HostEntry(Kind.MISSING),
    }
    runtime = RuntimeRoot(tree="/t", mounts=[("/t/x", "/usr/bin/env/x")], targets=targets,
                          source_dirs=frozenset({"/t/x"}))  # fmt: skip
    with pytest.raises(UnsafePath, match="no directory on the host"):
        job_ops(runtime=runtime)


def test_a_mount_point_outside_host_binds_is_made_in_the_root() -> None:
    runtime = RuntimeRoot(tree="/t", mounts=[("/t/man", "/srv/man")], source_dirs=frozenset())
    ops = job_ops(runtime=runtime)
    assert rootfs.MakeFile(f"{ROOT}/srv/man") in ops


def test_a_target_through_a_root_symlink_is_refused() -> None:
    runtime = RuntimeRoot(tree="/t", mounts=[("/t/x", "/bin/tool")])
    with pytest.raises(UnsafePath, match="symbolic link"):
        job_ops(runtime=runtime)


@pytest.mark.parametrize(
    "target", ["/", "/proc", "/proc/sys", "/dev/x", "/work", "/tmp/a", "/volumes/v",
               "/opt/runtime", "/opt/runtime/bin", "relative", "/a/../proc"],
)  # fmt: skip
def test_reserved_targets_are_refused(target: str) -> None:
    with pytest.raises(UnsafePath):
        check_target(target)


def test_build_overlays_every_allowed_directory() -> None:
    build = BuildRoot(source="/b/src", staging="/b/stage", scratch_bytes=1 << 20)
    ops = job_ops(build=build)
    overlays = [op for op in ops if isinstance(op, Overlay)]
    assert sorted(o.target for o in overlays) == [f"{ROOT}/etc/ssl/certs", f"{ROOT}/usr"]
    scratch = f"{ROOT}/.joblet-scratch"
    for o in overlays:
        assert o.lower == o.target and o.upper.startswith(scratch + "/")
    assert Unmount(scratch) in ops
    assert ops.index(Unmount(scratch)) > max(ops.index(o) for o in overlays)
    assert Protect(f"{ROOT}/src", rootfs.RO_ATTRS) in ops
    staging = f"{ROOT}/opt/runtime"
    assert Mount("/b/stage", staging, None, libc.MS_BIND) in ops
    assert Protect(staging, libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV) in ops


def test_build_in_a_user_namespace_has_idmapped_lower_layers() -> None:
    build = BuildRoot(source="/b/src", staging="/b/stage", scratch_bytes=1 << 20, owner=7)
    ops = job_ops(build=build, idmapped_volumes=True)
    overlays = [op for op in ops if isinstance(op, Overlay)]
    for o in overlays:
        assert Mount(o.target, o.lower, None, libc.MS_BIND, idmapped=True) in ops
        assert Unmount(o.lower) in ops
    assert rootfs.Chown(ROOT, 7) in ops and rootfs.Chown(f"{ROOT}/etc", 7) in ops
    assert rootfs.CopyFile("/etc/passwd", f"{ROOT}/etc/passwd", 7) in ops


def test_build_gets_writable_copies_of_allowed_files() -> None:
    build = BuildRoot(source="/b/src", staging="/b/stage", scratch_bytes=1 << 20)
    ops = job_ops(build=build)
    target = f"{ROOT}/etc/passwd"
    assert ops.index(Unmount(target)) + 1 == ops.index(rootfs.CopyFile("/etc/passwd", target, 0))
    assert not [op for op in ops if isinstance(op, rootfs.CopyFile) and "certs" in op.path]


def test_overlay_layer_paths_cannot_inject_options() -> None:
    allowed = {"/usr,upperdir=/": HostEntry(Kind.DIR)}
    build = BuildRoot(source="/b/src", staging="/b/stage", scratch_bytes=1 << 20)
    with pytest.raises(UnsafePath, match="overlay layer"):
        job_ops(build=build, allowed=allowed)


def test_a_skeleton_that_would_hide_another_host_mount_is_refused() -> None:
    allowed = {**ALLOWED, "/usr/share/ca": HostEntry(Kind.DIR)}
    targets = {"/usr": HostEntry(Kind.DIR), "/usr/new": HostEntry(Kind.MISSING)}
    runtime = RuntimeRoot(tree="/t", mounts=[("/t/x", "/usr/new")], targets=targets,
                          source_dirs=frozenset({"/t/x"}))  # fmt: skip
    with pytest.raises(UnsafePath, match="would hide /usr/share/ca"):
        job_ops(runtime=runtime, allowed=allowed)


def test_a_gpu_jobs_driver_directory_shares_a_runtimes_skeleton_under_usr_local() -> None:
    from joblet.isolation.driver_binds import DriverBinds

    targets = {"/usr": HostEntry(Kind.DIR), "/usr/local": HostEntry(Kind.DIR),
               "/usr/local/go": HostEntry(Kind.MISSING)}  # fmt: skip
    runtime = RuntimeRoot(tree="/t", mounts=[("/t/go", "/usr/local/go")], targets=targets,
                          source_dirs=frozenset({"/t/go"}))  # fmt: skip
    host = {**targets, "/usr/local/nvidia": HostEntry(Kind.MISSING)}
    lib = ("/usr/lib/libcuda.so.550", "/usr/local/nvidia/lib64/libcuda.so.1")
    ops = job_ops(runtime=runtime, driver_binds=DriverBinds((lib,), host))
    skel, local = f"{ROOT}/.joblet-skeleton", f"{ROOT}/usr/local"
    # One overlay over /usr/local, its skeleton holding both mount points: a
    # second one would hide the runtime's bind under it.
    assert [op for op in ops if isinstance(op, Overlay)] == [
        Overlay(local, lower=local, over=f"{skel}/s0")
    ]
    assert rootfs.MakeDir(f"{skel}/s0/go") in ops and rootfs.MakeDir(f"{skel}/s0/nvidia") in ops
    go = ops.index(Mount("/t/go", f"{local}/go", None, libc.MS_BIND | libc.MS_REC))
    tmpfs = next(i for i, op in enumerate(ops)
                 if isinstance(op, Mount) and op.target == f"{local}/nvidia")  # fmt: skip
    assert ops.index(Unmount(skel)) < go < tmpfs
