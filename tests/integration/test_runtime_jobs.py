"""Jobs with a runtime on a real daemon: the tree at /opt/runtime, read-only
for everyone in the job; extra mounts over host paths; the environment's
order; unknown runtimes refused before anything exists; each job's build
pinned from submission to its end, and again after a restart."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from joblet.api import joblet_pb2 as pb

from .conftest import ROOT_NEEDED, RunningDaemon, stored_record, wait_status
from .jobs_support import FINAL, logs, run
from .runtime_support import (
    HIDDEN_HOST_DIR,
    describe,
    events,
    launch_runtime_daemon,
    make_tree,
)

pytestmark = pytest.mark.integration
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDaemon, Path, Path]]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    base = tmp_path_factory.mktemp("runtimes")
    top = base / "resolver"
    tree = make_tree(base)
    describe(
        top, "testrt", build_id="b1", tree=str(tree),
        mounts=[[str(tree / "share" / "doc"), HIDDEN_HOST_DIR]],
        environment=[["PATH", "/opt/runtime/bin:${PATH}"], ["RT_ONLY", "rt"],
                     ["BOTH", "from-runtime"], ["PEEK", "[${USER_SECRET}]"]],
    )  # fmt: skip
    describe(top, "wrongarch", build_id="b1", tree=str(tree), refuse="built for arm64 only")
    daemon = launch_runtime_daemon(base / "d", top)
    yield daemon, top, tree
    daemon.stop()


def finished(daemon: RunningDaemon, job_id: str) -> str:
    status = wait_status(daemon.jobs(), job_id, FINAL, timeout=60)
    return str(status.status)


def test_job_sees_the_tree_and_its_environment(world: tuple[RunningDaemon, Path, Path]) -> None:
    daemon, _, _ = world
    stub = daemon.jobs()
    script = 'rt-hello; echo "$PATH"; echo "$RT_ONLY $BOTH $PEEK"; cat /usr/share/doc/marker'
    job = run(stub, "sh", "-c", script, runtime="testrt",
              environment={"BOTH": "from-user", "USER_SECRET": "s3"})  # fmt: skip
    assert finished(daemon, job) == "COMPLETED", logs(stub, job)
    lines = logs(stub, job).decode().splitlines()
    assert lines[0] == "runtime says hi"
    # base < runtime (expanded from the base only) < user
    assert (
        lines[1] == "/opt/runtime/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    )
    assert lines[2] == "rt from-user []"
    assert lines[3] == "from the runtime"  # the extra mount hides the host's directory


def test_nobody_in_the_job_writes_the_runtime(world: tuple[RunningDaemon, Path, Path]) -> None:
    daemon, _, tree = world
    stub = daemon.jobs()
    before = sorted(str(p) for p in tree.rglob("*"))
    attempts = (
        "id -u; "
        "touch /opt/runtime/new 2>&1; "
        "echo x >> /opt/runtime/bin/rt-hello 2>&1; "
        "rm -f /opt/runtime/bin/rt-hello 2>&1; "
        "touch /usr/share/doc/new 2>&1; "
        "mount -o remount,rw /opt/runtime 2>&1 || echo remount refused; "
        "mount -o remount,rw,bind /opt/runtime 2>&1 || echo bind remount refused; "
        "umount /opt/runtime 2>&1 || echo umount refused; "
        "touch /opt/runtime/after 2>&1; echo end"
    )
    job = run(stub, "sh", "-c", attempts, runtime="testrt")
    assert finished(daemon, job) == "COMPLETED"
    out = logs(stub, job).decode()
    assert out.splitlines()[0] == "0"  # the job's root
    assert out.count("Read-only file system") == 5, out
    for refused in ("remount refused", "bind remount refused", "umount refused"):
        assert refused in out
    assert sorted(str(p) for p in tree.rglob("*")) == before
    assert (tree / "bin" / "rt-hello").read_text().endswith("hi\n")


def test_unknown_runtime_is_not_found_and_leaves_nothing(
    world: tuple[RunningDaemon, Path, Path],
) -> None:
    daemon, _, _ = world
    stub = daemon.jobs()
    jobs_before = {j.uuid for j in stub.ListJobs(pb.EmptyRequest()).jobs}
    dirs_before = set(os.listdir(daemon.root / "jobs"))
    upload = pb.FileUpload(path="in.txt", content=b"x", mode=0o644)
    with pytest.raises(grpc.RpcError) as err:
        run(stub, "true", runtime="no-such-runtime", uploads=[upload])
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    assert "no-such-runtime" in str(err.value.details())
    with pytest.raises(grpc.RpcError) as err:
        run(stub, "true", runtime="wrongarch")
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "arm64" in str(err.value.details())
    assert {j.uuid for j in stub.ListJobs(pb.EmptyRequest()).jobs} == jobs_before
    assert set(os.listdir(daemon.root / "jobs")) == dirs_before


def test_build_is_pinned_for_the_job_and_released(world: tuple[RunningDaemon, Path, Path]) -> None:
    daemon, top, _ = world
    stub = daemon.jobs()
    job = run(stub, "true", runtime="testrt")
    assert finished(daemon, job) == "COMPLETED"
    assert stored_record(daemon, job)["runtime_build"] == "b1"
    deadline = time.monotonic() + 10
    while ["release", job] not in events(top) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ["acquire", job, "testrt", "b1"] in events(top)
    assert ["release", job] in events(top)
    plain = run(stub, "true")
    assert finished(daemon, plain) == "COMPLETED"
    assert not [e for e in events(top) if plain in e]  # no runtime, no pin


def test_a_failed_start_releases_the_build(world: tuple[RunningDaemon, Path, Path]) -> None:
    daemon, top, _ = world
    stub = daemon.jobs()
    job = run(stub, "/no/such/command", runtime="testrt")
    assert finished(daemon, job) == "FAILED"
    deadline = time.monotonic() + 10
    while ["release", job] not in events(top) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ["release", job] in events(top)


def test_restart_pins_the_recorded_build_again(world: tuple[RunningDaemon, Path, Path]) -> None:
    daemon, top, _ = world
    stub = daemon.jobs()
    job = run(stub, "sh", "-c", "until [ -e /work/go ]; do sleep 0.05; done; rt-hello",
              runtime="testrt")  # fmt: skip
    wait_status(stub, job, {"RUNNING"})
    daemon.kill9()
    daemon.restart()
    stub = daemon.jobs()
    deadline = time.monotonic() + 20
    while ["reacquire", job, "testrt", "b1"] not in events(top) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ["reacquire", job, "testrt", "b1"] in events(top)
    (daemon.workspace(job) / "go").touch()
    assert finished(daemon, job) == "COMPLETED"
    assert logs(stub, job).endswith(b"runtime says hi\n")
