"""A runtime's tree and extra mounts in real jobs, with and without the
jobs' user namespace: there, read-only, and never created on the host."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from isolation_harness import Harness, sh

from joblet.isolation.client import LauncherClient, ensure_launcher

pytestmark = pytest.mark.privileged


@pytest.fixture(params=["off", "on"])
async def any_launcher(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """A launcher whose jobs run as real host ids, then one with a user namespace."""
    if os.geteuid() != 0:
        pytest.skip("needs root: namespaces, mounts and pivot_root")
    socket_path = str(tmp_path / "launcher.sock")
    await ensure_launcher(socket_path, str(tmp_path / "state"), user_namespace=request.param)
    client = await LauncherClient.connect(socket_path)
    harness = Harness(tmp_path, socket_path, client)
    client.on_exit(harness._on_exit)
    try:
        yield harness
    finally:
        launcher_pid = await harness.client.ping()
        await harness.client.close()
        os.kill(launcher_pid, signal.SIGTERM)
        os.waitpid(launcher_pid, 0)


def make_tree(base: Path) -> Path:
    tree = base / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "lib" / "hidden").mkdir(parents=True)
    (tree / "lib" / "hidden" / "marker").write_text("from the runtime\n")
    (tree / "bin" / "hello").write_text("#!/bin/sh\necho runtime says hi\n")
    (tree / "bin" / "hello").chmod(0o755)
    for path in (tree, *tree.rglob("*")):
        os.lchown(path, 0, 0)
    tree.chmod(0o755)
    return tree


async def test_tree_is_read_only_at_opt_runtime(any_launcher: Harness) -> None:
    tree = make_tree(any_launcher.base)
    script = (
        "/opt/runtime/bin/hello; "
        "touch /opt/runtime/x 2>&1; "
        "mount -o remount,rw /opt/runtime 2>&1 || echo remount-refused; "
        "touch /opt/runtime/y 2>&1; echo done"
    )
    result = await any_launcher.run(sh(script), runtime_tree=str(tree))
    assert result.exit.exit_code == 0, result.stderr
    out = result.stdout
    assert "runtime says hi" in out
    assert out.count("Read-only file system") == 2, out
    assert "remount-refused" in out
    assert sorted(p.name for p in tree.iterdir()) == ["bin", "lib"]


async def test_extra_mount_hides_a_host_path(any_launcher: Harness) -> None:
    tree = make_tree(any_launcher.base)
    host_dir = "/usr/share/doc"  # on the host and under the read-only /usr bind
    before = sorted(os.listdir(host_dir))
    mounts = ((str(tree / "lib" / "hidden"), host_dir),)
    result = await any_launcher.run(
        sh(f"ls {host_dir}; cat {host_dir}/marker; touch {host_dir}/x 2>&1"),
        runtime_tree=str(tree), runtime_mounts=mounts,
    )  # fmt: skip
    assert result.stdout.split()[:1] == ["marker"], result.stdout + result.stderr
    assert "from the runtime" in result.stdout
    assert "Read-only file system" in result.stdout
    assert sorted(os.listdir(host_dir)) == before


async def test_missing_target_under_a_host_bind_is_made_in_the_job_only(
    any_launcher: Harness,
) -> None:
    tree = make_tree(any_launcher.base)
    target = "/usr/lib/joblet-no-such-dir/deeper"
    mounts = ((str(tree / "lib" / "hidden"), target),)
    host_lib = sorted(os.listdir("/usr/lib"))
    script = f"cat {target}/marker; ls /usr/lib | wc -l; touch {target}/x /usr/lib/y 2>&1"
    result = await any_launcher.run(sh(script), runtime_tree=str(tree), runtime_mounts=mounts)
    lines = result.stdout.splitlines()
    assert lines[0] == "from the runtime", result.stdout + result.stderr
    assert int(lines[1]) == len(host_lib) + 1  # the host's entries and the new one
    assert result.stdout.count("Read-only file system") == 2
    assert not os.path.exists("/usr/lib/joblet-no-such-dir")
    assert sorted(os.listdir("/usr/lib")) == host_lib


async def test_a_host_file_in_the_way_is_refused(any_launcher: Harness) -> None:
    tree = make_tree(any_launcher.base)
    mounts = ((str(tree / "lib" / "hidden"), "/usr/bin/env/sub"),)
    spec = any_launcher.spec(["true"], runtime_tree=str(tree), runtime_mounts=mounts)
    with pytest.raises(Exception, match="no directory on the host"):
        await any_launcher.start(spec)


async def test_a_source_leaving_the_tree_is_refused(any_launcher: Harness) -> None:
    tree = make_tree(any_launcher.base)
    (tree / "escape").symlink_to("/etc")
    mounts = ((str(tree / "escape"), "/mnt/etc"),)
    spec = any_launcher.spec(["true"], runtime_tree=str(tree), runtime_mounts=mounts)
    with pytest.raises(Exception, match="leaves the runtime's tree"):
        await any_launcher.start(spec)


async def test_new_mount_points_are_made_in_the_job_root_only(any_launcher: Harness) -> None:
    tree = make_tree(any_launcher.base)
    mounts = ((str(tree / "lib" / "hidden"), "/srv/rt/share"),)
    result = await any_launcher.run(
        sh("cat /srv/rt/share/marker; ls -d /opt/runtime"),
        runtime_tree=str(tree), runtime_mounts=mounts,
    )  # fmt: skip
    assert "from the runtime" in result.stdout, result.stderr
    assert not os.path.exists("/srv/rt") and not os.path.exists("/opt/runtime")
