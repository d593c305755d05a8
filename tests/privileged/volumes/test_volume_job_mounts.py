"""The root plan's volume binds applied for real, in a child's own mount
namespace: read-write and read-only volumes, nosuid/nodev, and a job's
symlink inside a volume staying a plain symlink."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from joblet.isolation import libc
from joblet.isolation.rootfs import RootInputs, apply_plan, plan_root
from joblet.volumes.manager import VolumeManager

pytestmark = [pytest.mark.privileged, pytest.mark.asyncio]


def _probe(root: str) -> dict[str, object]:
    """Runs in the child, inside the new mount namespace."""
    found: dict[str, object] = {}
    for name in ("rw", "ro"):
        try:
            Path(root, "volumes", name, "new").write_text("x")
            found[name] = "ok"
        except OSError as exc:
            found[name] = errno.errorcode[exc.errno or 0]
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4].startswith(f"{root}/volumes/"):
                found["opts:" + os.path.basename(fields[4])] = fields[5]
    found["link"] = os.readlink(f"{root}/volumes/rw/escape")
    return found


def run_in_mount_ns(inputs: RootInputs) -> dict[str, object]:
    ops = plan_root(inputs)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(read_end)
            libc.unshare(libc.CLONE_NEWNS)
            apply_plan(ops)
            os.write(write_end, json.dumps(_probe(inputs.root)).encode())
            code = 0
        except BaseException as exc:
            os.write(write_end, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(data)
    return result


async def test_volumes_are_bound_with_their_modes(manager: VolumeManager, tmp_path: Path) -> None:
    rw = await manager.create("rw", "16MiB")
    ro = await manager.create("ro", "4MiB", "memory")
    Path(ro.path, "data").write_text("read me")
    os.symlink("/", Path(rw.path, "escape"))  # a job's symlink: never resolved by us
    job = tmp_path / "job"
    for sub in ("root", "work", "etc"):
        (job / sub).mkdir(parents=True)
    for name in ("hostname", "hosts", "resolv.conf"):
        (job / "etc" / name).write_text("")
    mounts = manager.resolve_for_job(["rw", "ro:ro"])
    inputs = RootInputs(str(job / "root"), {}, str(job / "work"), {}, 1 << 20, mounts)
    found = run_in_mount_ns(inputs)
    assert "error" not in found, found
    assert found["rw"] == "ok" and found["ro"] == "EROFS"
    assert set(str(found["opts:rw"]).split(",")) >= {"rw", "nosuid", "nodev"}
    assert set(str(found["opts:ro"]).split(",")) >= {"ro", "nosuid", "nodev"}
    assert found["link"] == "/"
    assert Path(rw.path, "new").read_text() == "x"  # the job's write reached the volume
    assert not Path(ro.path, "new").exists()
    assert not (job / "root" / "volumes" / "rw" / "new").exists()  # the child's mounts are gone
