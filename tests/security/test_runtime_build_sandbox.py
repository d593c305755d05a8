"""Runtime builds are jobs in a sandbox: hostile build scripts through a real
daemon, each of whose attempts fails or stays inside the build, with and
without the jobs' user namespace. The host is compared before and after, and
nothing a build mounted or wrote outside its staging dir is left."""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from integration.conftest import ROOT_NEEDED, RunningDaemon
from integration.jobs_support import logs
from integration.netns import in_netns
from integration.runtime_support import launch_runtime_daemon, write_plan

from joblet.api import joblet_pb2 as pb

pytestmark = pytest.mark.integration


@dataclass
class Sandbox:
    daemon: RunningDaemon
    top: Path
    base: Path
    userns: str

    def build(self, script: str, **plan: Any) -> Build:
        name = f"b{uuid.uuid4().hex[:8]}"
        src, staging = self.base / name / "src", self.base / name / "staging"
        src.mkdir(parents=True)
        staging.mkdir()
        (src / "build.sh").write_text(script)
        for link, target in plan.pop("links", {}).items():
            (src / link).symlink_to(target)
        for file, (text, mode) in plan.pop("files", {}).items():
            (src / file).write_text(text)
            (src / file).chmod(mode)
        fields = {"runtime_name": name, "source_dir": str(src), "staging_dir": str(staging),
                  "script": "build.sh", "timeout_s": 60, "max_memory_mb": 256,
                  "scratch_bytes": 64 << 20, **plan}  # fmt: skip
        builds = self.top / "builds"
        write_plan(self.top, name, fields)
        final = builds / f"{name}.final"
        deadline = time.monotonic() + 120
        while not final.exists():
            error = builds / f"{name}.error"
            assert not error.exists(), error.read_text()
            assert time.monotonic() < deadline, "the build did not end"
            time.sleep(0.05)
        job_id = (builds / f"{name}.job").read_text()
        status, _, reason = final.read_text().partition(" ")
        output = logs(self.daemon.jobs(), job_id).decode(errors="replace")
        return Build(job_id, status, reason, output, staging)


@dataclass
class Build:
    job_id: str
    status: str
    reason: str
    output: str
    staging: Path


@pytest.fixture(scope="module", params=["on", "off"])
def sandbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    base = tmp_path_factory.mktemp(f"builds-{request.param}")
    top = base / "resolver"
    daemon = launch_runtime_daemon(base / "d", top, joblet={"userNamespace": request.param})
    yield Sandbox(daemon, top, base, request.param)
    daemon.stop()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def host_snapshot(daemon: RunningDaemon) -> dict[str, Any]:
    """What a build must not change: listings and hashes of the host's
    system directories and of the daemon's root, and the host's mounts."""
    config = daemon.root / "config"
    return {
        "usr_bin": sorted(os.listdir("/usr/bin")),
        "usr_lib": sorted(os.listdir("/usr/lib")),
        "etc": sorted(os.listdir("/etc")),
        "passwd": _digest(Path("/etc/passwd")),
        "ld.so.cache": _digest(Path("/etc/ld.so.cache")),
        "root": sorted(os.listdir(daemon.root)),
        "config": {p.name: _digest(p) for p in sorted(config.iterdir()) if p.is_file()},
        "mounts": sorted(_mount_points(str(daemon.root.parent))),
    }


def _mount_points(mentioning: str = "") -> list[str]:
    """The host's mount points whose mountinfo line mentions `mentioning`
    (other tests on the host mount and unmount meanwhile), and its overlays."""
    with open("/proc/self/mountinfo") as f:
        lines = [line for line in f if mentioning in line or " - overlay " in line]
    return [line.split()[4] for line in lines]


def test_writes_to_the_system_stay_in_the_build(sandbox: Sandbox) -> None:
    root = sandbox.daemon.root
    before = host_snapshot(sandbox.daemon)
    script = f"""
        echo built > /usr/bin/joblet-build-x && cat /usr/bin/joblet-build-x
        rm -f /usr/bin/env && echo removed-env
        mkdir -p /usr/lib/joblet-build-lib && echo lib-made
        echo 'evil:x:0:0::/:/bin/sh' >> /etc/passwd && grep -c '^evil:' /etc/passwd
        head -c 100 /etc/ld.so.cache > /etc/ld.so.cache && echo cache-rewritten
        mkdir /etc/joblet-build && echo etc-written
        ls {root} 2>&1 || true
        cat {root}/config/*.key {root}/config/joblet-config.yml 2>&1 || true
        ls /run/joblet /opt/joblet 2>&1 || true
        echo done
    """
    build = sandbox.build(script)
    assert build.status == "COMPLETED", build.output
    for line in ("built", "removed-env", "lib-made", "1", "cache-rewritten", "etc-written", "done"):
        assert line in build.output.splitlines(), build.output
    assert "BEGIN" not in build.output and "PRIVATE" not in build.output
    assert build.output.count("No such file or directory") >= 4
    assert host_snapshot(sandbox.daemon) == before
    assert os.path.exists("/usr/bin/env")
    assert list(build.staging.iterdir()) == []


def test_no_network_but_loopback(sandbox: Sandbox) -> None:
    world = sandbox.daemon.world
    servers = [socket.create_server(("127.0.0.1", 0))]
    servers.append(in_netns(world.netns, lambda: socket.create_server(("127.0.0.1", 0))))
    ports = [s.getsockname()[1] for s in servers]
    for server in servers:
        server.setblocking(False)
    probe = "; ".join(
        f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\" "
        f"2>/dev/null && echo reached-{port} || echo refused-{port}"
        for port in ports
    )
    build = sandbox.build(f"{probe}; cat /proc/net/dev | tail -n +3 | cut -d: -f1\n")
    try:
        for port in ports:
            assert f"refused-{port}" in build.output, build.output
        interfaces = build.output.split()[len(ports) :]
        assert [i for i in interfaces if not i.startswith("refused")] == ["lo"]
        for server in servers:
            with pytest.raises(BlockingIOError):
                server.accept()
    finally:
        for server in servers:
            server.close()


def test_timeout_ends_the_build_failed(sandbox: Sandbox) -> None:
    build = sandbox.build("echo started; sleep 20\n", timeout_s=1.5)
    assert (build.status, build.reason) == ("FAILED", "timeout")
    assert "started" in build.output
    # A job like any other: listed under its runtime's name, with its own id.
    listed = {j.uuid: j for j in sandbox.daemon.jobs().ListJobs(pb.EmptyRequest()).jobs}
    job = listed[build.job_id]
    assert job.name == f"runtime-build:{build.staging.parent.name}"
    assert job.status == "FAILED"


def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    before = host_snapshot(sandbox.daemon)
    build = sandbox.build("bomb() { bomb | bomb & }; bomb; sleep 600\n", timeout_s=4)
    # held by its pids limit until the timeout, or, when a loaded host lets the
    # bomb's shells grow first, by its memory limit: contained either way
    assert build.status == "FAILED" and build.reason in ("timeout", "out of memory"), build.reason
    assert host_snapshot(sandbox.daemon) == before


def test_memory_limit_applies(sandbox: Sandbox) -> None:
    script = "python3 -c 'b = bytearray(512 << 20); b[::4096] = b\"x\" * len(b[::4096])'\n"
    build = sandbox.build(script, max_memory_mb=64)
    assert build.status == "FAILED", build.output
    assert build.reason == "out of memory" or "signal 9" in build.reason, build.reason


def test_staging_is_nosuid_and_nodev(sandbox: Sandbox) -> None:
    script = """
        cp /bin/true /opt/runtime/suid && chmod 4755 /opt/runtime/suid && echo suid-made
        mknod /opt/runtime/null c 1 3 2>/dev/null && echo node-made || echo mknod-refused
        [ -c /opt/runtime/null ] && (echo x > /opt/runtime/null) 2>/dev/null && echo node-works
        grep ' /opt/runtime ' /proc/self/mountinfo
        echo data > /opt/runtime/kept
    """
    build = sandbox.build(script)
    assert build.status == "COMPLETED", build.output
    assert "node-works" not in build.output
    mountinfo = next(line for line in build.output.splitlines() if " /opt/runtime " in line)
    options = set(mountinfo.split()[5].split(","))
    assert {"rw", "nosuid", "nodev"} <= options
    if sandbox.userns == "on":
        assert "mknod-refused" in build.output
    kept = build.staging / "kept"
    assert kept.read_text() == "data\n"
    # Files the build's root made belong to the host's root (idmapped staging
    # with a user namespace, real root without one); its setuid bit is left
    # for the install's check to clear.
    assert (kept.stat().st_uid, kept.stat().st_gid) == (0, 0)


def test_sources_are_read_only_and_readable(sandbox: Sandbox) -> None:
    script = "cat /src/private.txt; touch /src/new 2>&1; rm /src/private.txt 2>&1; echo end\n"
    build = sandbox.build(script, files={"private.txt": ("only root reads me\n", 0o600)})
    assert build.status == "COMPLETED", build.output
    assert build.output.startswith("only root reads me\n"), build.output
    assert build.output.count("Read-only file system") == 2


def test_a_symlink_planted_in_src_leads_nowhere(sandbox: Sandbox) -> None:
    canary = Path(f"/var/tmp/joblet-canary-{uuid.uuid4().hex}")
    canary.write_text("unchanged\n")
    try:
        script = """
            echo pwned > /src/link 2>&1 || echo src-refused
            echo pwned > /src/dirlink/x 2>&1 || echo dir-refused
            cat /src/link 2>&1 || echo no-target
            echo pwned > "$(readlink /src/link)" 2>&1 || echo target-refused
        """
        build = sandbox.build(script, links={"link": str(canary), "dirlink": "/var/tmp"})
        assert canary.read_text() == "unchanged\n"
        assert "src-refused" in build.output and "dir-refused" in build.output
        assert "unchanged" not in build.output  # /var/tmp is no host path in the build
    finally:
        canary.unlink()


def test_nothing_is_left_mounted_or_running(sandbox: Sandbox) -> None:
    before = sorted(_mount_points(str(sandbox.base)))
    build = sandbox.build("grep -c overlay /proc/self/mountinfo; ls -A /.joblet-scratch | wc -l\n")
    assert build.status == "COMPLETED"
    overlays, scratch_entries = map(int, build.output.split())
    assert overlays >= 1  # the build did run on overlays
    assert scratch_entries == 0  # their layers are reachable only through them
    deadline = time.monotonic() + 10
    while sorted(_mount_points(str(sandbox.base))) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(_mount_points(str(sandbox.base))) == before
    assert not [m for m in _mount_points() if m.startswith(str(build.staging.parent))]
