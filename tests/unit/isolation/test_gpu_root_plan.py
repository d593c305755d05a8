"""A GPU job's part of the root plan (pure): its device nodes in /dev and its
own /proc/driver/nvidia; and reading what that entry gets from the host's."""

from __future__ import annotations

from pathlib import Path

import pytest

from joblet.isolation import libc
from joblet.isolation.driver_proc import DriverProc, read_driver_proc, without_device_files
from joblet.isolation.paths import UnsafePath
from joblet.isolation.rootfs import (
    MakeDir,
    MakeFile,
    Mount,
    ProcEntries,
    Protect,
    RootInputs,
    WriteFile,
    plan_root,
)

ROOT = "/j/root"


def inputs(**fields: object) -> RootInputs:
    return RootInputs(ROOT, {}, "/j/work", {}, 1 << 20, **fields)  # type: ignore[arg-type]


def test_a_gpu_jobs_nodes_are_read_only_binds_in_its_dev() -> None:
    ops = plan_root(
        inputs(devices=[("/fake/dev/nvidia3", "nvidia3"), ("/dev/nvidiactl", "nvidiactl")])
    )
    target = f"{ROOT}/dev/nvidia3"
    at = ops.index(MakeFile(target))
    assert ops[at + 1] == Mount("/fake/dev/nvidia3", target, None, libc.MS_BIND)
    protect = ops[at + 2]
    assert isinstance(protect, Protect) and protect.attrs & libc.MOUNT_ATTR_RDONLY
    assert not protect.attrs & libc.MOUNT_ATTR_NODEV  # the node must work
    dev_tmpfs = next(
        i for i, op in enumerate(ops) if isinstance(op, Mount) and op.target == f"{ROOT}/dev"
    )
    assert dev_tmpfs < at  # on the job's /dev tmpfs, not the host's


def test_a_device_name_cannot_climb_out_of_dev() -> None:
    with pytest.raises(UnsafePath):
        plan_root(inputs(devices=[("/dev/sda", "../etc/x")]))


def test_the_driver_entry_is_a_tmpfs_with_copies_and_only_the_jobs_gpus() -> None:
    proc = DriverProc(
        files=(("params", b"ModifyDeviceFiles: 0\n"), ("version", b"NVRM 550\n")),
        gpus=(("/proc/driver/nvidia/gpus/0000:3b:00.0", "0000:3b:00.0"),),
    )
    ops = plan_root(inputs(driver_proc=proc))
    target = f"{ROOT}/proc/driver/nvidia"
    flags = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
    start = ops.index(Mount("tmpfs", target, "tmpfs", flags, "mode=0555,size=1m"))
    # After the shared part's read-only bind of the kernel's /proc/driver.
    assert any(
        isinstance(op, ProcEntries) and op.proc == f"{ROOT}/proc" and "driver" in op.readonly
        for op in ops[:start]
    )
    assert ops[start + 1 :] [:6] == [
        WriteFile(f"{target}/params", b"ModifyDeviceFiles: 0\n"),
        WriteFile(f"{target}/version", b"NVRM 550\n"),
        MakeDir(f"{target}/gpus"),
        MakeDir(f"{target}/gpus/0000:3b:00.0"),
        Mount("/proc/driver/nvidia/gpus/0000:3b:00.0", f"{target}/gpus/0000:3b:00.0", None,
              libc.MS_BIND | libc.MS_REC),
        Protect(target, libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID
                | libc.MOUNT_ATTR_NODEV | libc.MOUNT_ATTR_NOEXEC),
    ]  # fmt: skip


def test_params_stop_the_driver_making_device_files() -> None:
    params = "ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 1\nDeviceFileUID: 0\n"
    assert without_device_files(params) == (
        "ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 0\nDeviceFileUID: 0\n"
    )
    assert without_device_files("A: 1") == "A: 1\nModifyDeviceFiles: 0\n"


def test_reading_the_hosts_entry_keeps_only_the_jobs_gpus(tmp_path: Path) -> None:
    source = tmp_path / "nvidia"
    for bus in ("0000:3b:00.0", "0000:b1:00.0"):
        (source / "gpus" / bus).mkdir(parents=True)
    (source / "params").write_text("ModifyDeviceFiles: 1\n")
    (source / "version").write_text("NVRM version: 550.54.15\n")
    found = read_driver_proc(str(source), ["0000:b1:00.0"], target=str(tmp_path))
    assert found == DriverProc(
        files=(("params", b"ModifyDeviceFiles: 0\n"), ("version", b"NVRM version: 550.54.15\n")),
        gpus=((str(source / "gpus" / "0000:b1:00.0"), "0000:b1:00.0"),),
    )
    # No driver entry in the job's /proc (no driver loaded): nothing to plan.
    assert read_driver_proc(str(source), ["0000:b1:00.0"], target=str(tmp_path / "none")) is None
    assert read_driver_proc("", ["0000:b1:00.0"], target=str(tmp_path)) is None


def driver_binds_of(files: list[tuple[str, str]], host: dict[str, object]) -> object:
    from joblet.isolation.driver_binds import DriverBinds

    return DriverBinds(tuple(files), host)  # type: ignore[arg-type]


def test_driver_files_are_read_only_binds_on_a_tmpfs_of_the_jobs_own() -> None:
    from joblet.isolation.rootfs import HostEntry, Kind, Overlay

    files = [("/usr/lib/libcuda.so.550", "/usr/local/nvidia/lib64/libcuda.so.1"),
             ("/usr/bin/nvidia-smi", "/usr/local/nvidia/bin/nvidia-smi")]  # fmt: skip
    host = {"/usr": HostEntry(Kind.DIR), "/usr/local": HostEntry(Kind.DIR),
            "/usr/local/nvidia": HostEntry(Kind.MISSING)}  # fmt: skip
    allowed = {"/usr": HostEntry(Kind.DIR)}
    binds = driver_binds_of(files, host)
    ops = plan_root(RootInputs(ROOT, allowed, "/j/work", {}, 1 << 20, driver_binds=binds))  # type: ignore[arg-type]
    target = f"{ROOT}/usr/local/nvidia"
    # The host's /usr is read-only: the mount point comes from a skeleton overlay.
    assert any(isinstance(op, Overlay) and op.target == f"{ROOT}/usr/local" for op in ops)
    assert MakeDir(target) not in ops and MakeDir(f"{ROOT}/usr/local") not in ops
    tmpfs = ops.index(Mount("tmpfs", target, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV,
                            "mode=0755,size=64k"))  # fmt: skip
    lib = f"{target}/lib64/libcuda.so.1"
    assert ops.index(MakeFile(lib)) > tmpfs
    assert Mount("/usr/lib/libcuda.so.550", lib, None, libc.MS_BIND) in ops
    assert Mount("/usr/bin/nvidia-smi", f"{target}/bin/nvidia-smi", None, libc.MS_BIND) in ops
    protects = [op for op in ops if isinstance(op, Protect) and op.target == target]
    assert protects and protects[0].attrs & libc.MOUNT_ATTR_RDONLY
    assert not protects[0].attrs & libc.MOUNT_ATTR_NOEXEC  # nvidia-smi runs
    smi = Mount("/usr/bin/nvidia-smi", f"{target}/bin/nvidia-smi", None, libc.MS_BIND)
    assert ops.index(protects[0]) > ops.index(smi)  # binds first, then all read-only


def test_a_driver_file_cannot_land_outside_its_directories() -> None:
    for bad in ("/usr/local/nvidia/lib64/../../../etc/passwd", "/etc/ld.so.preload",
                "/usr/local/nvidia/lib64/sub/x", "/usr/local/nvidia/lib64/.."):  # fmt: skip
        with pytest.raises(UnsafePath):
            plan_root(inputs(driver_binds=driver_binds_of([("/usr/lib/x", bad)], {})))
