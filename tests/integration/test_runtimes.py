"""RuntimeService through a real daemon: a shell-script runtime installed
from local files (rnx and gRPC), used by jobs, listed, tested, reinstalled
under a running job, removed; the refusals, roles and bad names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, RunningDaemon, start_daemon, wait_status
from .jobs_support import FINAL, logs, run
from .runtime_sources import local_request, write_runtime

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = start_daemon(tmp_path_factory.mktemp("rtdaemon"))
    yield running
    running.stop()


def stub(d: RunningDaemon, node: str = "default") -> pb_grpc.RuntimeServiceStub:
    return pb_grpc.RuntimeServiceStub(d.channel(node))


def install(
    d: RunningDaemon, directory: Path, force: bool = False
) -> list[pb.RuntimeInstallationChunk]:
    chunks = stub(d).StreamingInstallRuntimeFromLocal(
        local_request(directory, force=force), timeout=120
    )
    return list(chunks)


def result_of(chunks: list[pb.RuntimeInstallationChunk]) -> pb.RuntimeInstallationResult:
    (result,) = [c.result for c in chunks if c.WhichOneof("chunk_type") == "result"]
    return result


def finished(d: RunningDaemon, job_id: str) -> pb.GetJobStatusRes:
    return wait_status(d.jobs(), job_id, FINAL, timeout=60)


def current_build(d: RunningDaemon, name: str) -> Path:
    """The directory of the runtime's current build (its `current` link resolved)."""
    runtimes = d.root / "runtimes" / name
    return runtimes / os.readlink(runtimes / "current")


def du(path: Path) -> int:
    out = subprocess.run(
        ["du", "-s", "--block-size=1", str(path)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[0])


def test_install_with_rnx_then_a_job_uses_it(daemon: RunningDaemon, tmp_path: Path) -> None:
    src = write_runtime(tmp_path / "shtools", "shtools")
    done = daemon.rnx("runtime", "install", str(src), timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Runtime installed: shtools (2.9 MiB)" in done.stdout
    assert b"building shtools" in done.stdout  # the build log, live
    assert b"6/6 install" in done.stderr
    job = run(daemon.jobs(), "sh", "-c", "hello; echo $SHTOOLS", runtime="shtools")
    assert finished(daemon, job).status == "COMPLETED"
    assert logs(daemon.jobs(), job) == b"hello from v1\nyes\n"
    again = daemon.rnx("runtime", "install", str(src))
    assert again.returncode == 1
    assert b"already installed" in again.stderr


def test_streamed_install_steps_log_and_build_job(daemon: RunningDaemon, tmp_path: Path) -> None:
    chunks = install(daemon, write_runtime(tmp_path / "st", "streamed"))
    steps = [c.progress.step for c in chunks if c.WhichOneof("chunk_type") == "progress"]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert {c.progress.total_steps for c in chunks if c.HasField("progress")} == {6}
    fetch = next(c.progress for c in chunks if c.HasField("progress") and c.progress.step == 2)
    assert fetch.bytes_done == fetch.bytes_total > 0
    log = b"".join(c.log.data for c in chunks if c.HasField("log"))
    assert b"building streamed" in log
    assert b"built streamed" in log
    result = result_of(chunks)
    assert result.success, result.message
    assert result.install_path.endswith("/tree")
    build = daemon.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=result.build_job_uuid))
    assert build.name == "runtime-build:streamed"
    assert build.status == "COMPLETED"
    listed = daemon.jobs().ListJobs(pb.EmptyRequest())
    assert result.build_job_uuid in {j.uuid for j in listed.jobs}


def test_list_and_info_fill_every_field(daemon: RunningDaemon, tmp_path: Path) -> None:
    src = write_runtime(tmp_path / "listed", "listed")
    assert result_of(install(daemon, src)).success
    tree_usage = du(current_build(daemon, "listed") / "tree")
    res = stub(daemon).GetRuntimeInfo(pb.RuntimeInfoReq(runtime="listed"))
    assert res.found
    info = res.runtime
    assert (info.name, info.language, info.version) == ("listed", "sh", "1")
    assert info.description == "a tiny shell runtime"
    assert list(info.packages) == ["hello==1", "world==2"]  # the build's .packages
    assert info.available
    assert list(info.requirements.architectures) == ["amd64", "arm64"]
    assert not info.requirements.gpu
    assert info.sizeBytes == tree_usage
    listed = stub(daemon).ListRuntimes(pb.EmptyRequest())
    assert info in list(listed.runtimes)
    out = daemon.rnx("--json", "runtime", "info", "listed")
    assert json.loads(out.stdout)["runtime"]["size_bytes"] == tree_usage
    table = daemon.rnx("runtime", "list").stdout.decode()
    assert "listed" in table and "AVAILABLE" in table


def test_test_runtime_success_and_exit_3(daemon: RunningDaemon, tmp_path: Path) -> None:
    assert result_of(install(daemon, write_runtime(tmp_path / "tt", "tested"))).success
    ok = stub(daemon).TestRuntime(pb.RuntimeTestReq(runtime="tested"), timeout=60)
    assert ok.success
    assert ok.exitCode == 0
    assert "hello from v1" in ok.output
    assert not ok.error
    names = [j.name for j in daemon.jobs().ListJobs(pb.EmptyRequest()).jobs]
    assert "runtime-test:tested" in names
    # The host (not a job: none can write a runtime) changes what the test exits with.
    tree = current_build(daemon, "tested") / "tree"
    (tree / "code").write_text("3\n")
    bad = stub(daemon).TestRuntime(pb.RuntimeTestReq(runtime="tested"), timeout=60)
    assert not bad.success
    assert bad.exitCode == 3
    assert "hello from v1" in bad.output
    cli = daemon.rnx("runtime", "test", "tested")
    assert cli.returncode == 1
    assert b"exit code 3" in cli.stderr


def test_a_failed_build_leaves_nothing(daemon: RunningDaemon, tmp_path: Path) -> None:
    src = write_runtime(tmp_path / "broken", "broken", extra="echo 'about to fail'; exit 7")
    done = daemon.rnx("runtime", "install", str(src), timeout=120)
    assert done.returncode == 1
    err = done.stderr.decode()
    assert "build job" in err
    assert "about to fail" in err  # the log's last lines
    assert "exit code 7" in err
    assert not (daemon.root / "runtimes" / "broken").exists()
    assert not any((daemon.root / "runtimes" / ".staging").iterdir())
    res = stub(daemon).GetRuntimeInfo(pb.RuntimeInfoReq(runtime="broken"))
    assert not res.found


def test_a_failing_test_fails_the_install(daemon: RunningDaemon, tmp_path: Path) -> None:
    src = write_runtime(tmp_path / "untested", "untested", extra="echo 4 > /opt/runtime/code")
    result = result_of(install(daemon, src))
    assert not result.success
    assert "test failed" in result.message
    assert not (daemon.root / "runtimes" / "untested").exists()


def test_remove_refused_while_used_then_frees_what_du_says(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    assert result_of(install(daemon, write_runtime(tmp_path / "rm", "removable"))).success
    job = run(daemon.jobs(), "sleep", "60", runtime="removable")
    wait_status(daemon.jobs(), job, {"RUNNING"})
    with pytest.raises(grpc.RpcError) as refused:
        stub(daemon).RemoveRuntime(pb.RuntimeRemoveReq(runtime="removable"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert job in str(refused.value.details())
    daemon.jobs().StopJob(pb.StopJobReq(uuid=job))
    finished(daemon, job)
    expected = du(daemon.root / "runtimes" / "removable")
    res = stub(daemon).RemoveRuntime(pb.RuntimeRemoveReq(runtime="removable"))
    assert res.success
    assert abs(res.freedSpaceBytes - expected) <= expected / 100
    assert not (daemon.root / "runtimes" / "removable").exists()
    with pytest.raises(grpc.RpcError) as gone:
        stub(daemon).RemoveRuntime(pb.RuntimeRemoveReq(runtime="removable"))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_force_reinstall_under_a_running_job(daemon: RunningDaemon, tmp_path: Path) -> None:
    src = write_runtime(tmp_path / "fr", "forced", version="v1")
    assert result_of(install(daemon, src)).success
    old_build = current_build(daemon, "forced").name
    loop = "while true; do cat /opt/runtime/version; sleep 0.1; done"
    first = run(daemon.jobs(), "sh", "-c", loop, runtime="forced")
    wait_status(daemon.jobs(), first, {"RUNNING"})
    write_runtime(src, "forced", version="v2")
    done = daemon.rnx("runtime", "install", "--force", "--quiet", str(src), timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert b"building" not in done.stdout  # --quiet
    second = run(daemon.jobs(), "cat", "/opt/runtime/version", runtime="forced")
    assert finished(daemon, second).status == "COMPLETED"
    assert logs(daemon.jobs(), second) == b"v2\n"
    time.sleep(0.5)  # the first job keeps reading after the reinstall
    assert (daemon.root / "runtimes" / "forced" / old_build).is_dir()
    daemon.jobs().StopJob(pb.StopJobReq(uuid=first))
    finished(daemon, first)
    assert set(logs(daemon.jobs(), first).split()) == {b"v1"}
    deadline = time.monotonic() + 20
    while (daemon.root / "runtimes" / "forced" / old_build).exists():
        assert time.monotonic() < deadline, "the superseded build was not deleted"
        time.sleep(0.05)


def test_one_build_per_name(daemon: RunningDaemon, tmp_path: Path) -> None:
    src = write_runtime(tmp_path / "slow", "slow", extra="sleep 3")
    chunks = stub(daemon).StreamingInstallRuntimeFromLocal(local_request(src), timeout=120)
    first = next(chunks)  # validate: the name is claimed
    assert first.progress.step == 1
    with pytest.raises(grpc.RpcError) as second:
        stub(daemon).InstallRuntimeFromLocal(local_request(src), timeout=30)
    assert second.value.code() == grpc.StatusCode.ABORTED
    assert "slow" in str(second.value.details())
    chunks.cancel()  # closing the stream does not stop the build
    deadline = time.monotonic() + 60
    while not stub(daemon).GetRuntimeInfo(pb.RuntimeInfoReq(runtime="slow")).found:
        assert time.monotonic() < deadline, "the build stopped with its stream"
        time.sleep(0.1)
    unary = stub(daemon).InstallRuntimeFromLocal(local_request(src, force=True), timeout=120)
    assert unary.status == "installed"
    assert unary.runtimeSpec == "slow"
    assert unary.buildJobUuid


def test_stopping_the_build_job_ends_the_install(daemon: RunningDaemon, tmp_path: Path) -> None:
    src = write_runtime(tmp_path / "stopme", "stopme", extra="sleep 60")
    chunks = stub(daemon).StreamingInstallRuntimeFromLocal(local_request(src), timeout=120)
    build_job = ""
    for chunk in chunks:
        if chunk.HasField("progress") and chunk.progress.step == 4:
            build_job = chunk.progress.build_job_uuid
            assert build_job in chunk.progress.message
            daemon.jobs().StopJob(pb.StopJobReq(uuid=build_job))
        if chunk.HasField("result"):
            assert not chunk.result.success
            assert chunk.result.build_job_uuid == build_job
            assert "STOPPED" in chunk.result.message
    assert build_job
    assert not (daemon.root / "runtimes" / "stopme").exists()


def test_viewer_reads_and_validates_only(daemon: RunningDaemon, tmp_path: Path) -> None:
    viewer = stub(daemon, "viewer")
    viewer.ListRuntimes(pb.EmptyRequest())
    assert not viewer.GetRuntimeInfo(pb.RuntimeInfoReq(runtime="nothing")).found
    assert viewer.ValidateRuntimeSpec(
        pb.ValidateRuntimeSpecRequest(runtimeSpec="python:3.11")
    ).valid
    src = write_runtime(tmp_path / "v", "viewed")
    calls = [
        lambda: viewer.TestRuntime(pb.RuntimeTestReq(runtime="x")),
        lambda: viewer.RemoveRuntime(pb.RuntimeRemoveReq(runtime="x")),
        lambda: viewer.InstallRuntimeFromLocal(local_request(src)),
        lambda: list(viewer.StreamingInstallRuntimeFromLocal(local_request(src))),
        lambda: viewer.InstallRuntimeFromGithub(pb.InstallRuntimeRequest(repository="a/b")),
        lambda: list(viewer.StreamingInstallRuntimeFromGithub(pb.InstallRuntimeRequest())),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as denied:
            call()
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not (daemon.root / "runtimes" / "viewed").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", "a\0b", "..", "UPPER"])
def test_bad_names_are_invalid_argument(daemon: RunningDaemon, name: str, tmp_path: Path) -> None:
    before = sorted(p.name for p in (daemon.root / "runtimes").iterdir())
    s = stub(daemon)
    src = write_runtime(tmp_path / "good", "good")
    spec = (src / "runtime.yml").read_text()
    bad_spec = write_runtime(tmp_path / "bad", "bad")
    (bad_spec / "runtime.yml").write_text(spec.replace("name: good", f"name: {name!r}"))
    for call in (
        lambda: s.InstallRuntimeFromLocal(local_request(src, name)),
        lambda: list(s.StreamingInstallRuntimeFromLocal(local_request(bad_spec))),
        lambda: s.InstallRuntimeFromGithub(
            pb.InstallRuntimeRequest(runtimeSpec=name, repository="acme/tools")
        ),
        lambda: s.GetRuntimeInfo(pb.RuntimeInfoReq(runtime=name)),
        lambda: s.TestRuntime(pb.RuntimeTestReq(runtime=name)),
        lambda: s.RemoveRuntime(pb.RuntimeRemoveReq(runtime=name)),
        lambda: daemon.jobs().RunJob(pb.RunJobRequest(command="true", runtime=name)),
    ):
        with pytest.raises(grpc.RpcError) as bad:
            call()
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad.value.details()
    assert not s.ValidateRuntimeSpec(pb.ValidateRuntimeSpecRequest(runtimeSpec=name)).valid
    assert sorted(p.name for p in (daemon.root / "runtimes").iterdir()) == before


def test_unknown_runtime(daemon: RunningDaemon) -> None:
    s = stub(daemon)
    assert not s.GetRuntimeInfo(pb.RuntimeInfoReq(runtime="python:9.9")).found
    for call in (
        lambda: s.TestRuntime(pb.RuntimeTestReq(runtime="nothing")),
        lambda: s.RemoveRuntime(pb.RuntimeRemoveReq(runtime="nothing")),
        lambda: daemon.jobs().RunJob(pb.RunJobRequest(command="true", runtime="nothing")),
    ):
        with pytest.raises(grpc.RpcError) as missing:
            call()
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    info = daemon.rnx("runtime", "info", "nothing")
    assert info.returncode == 1
    assert info.stderr.count(b"\n") == 1  # one line, no traceback


def test_validate_with_rnx(daemon: RunningDaemon, tmp_path: Path) -> None:
    ok = daemon.rnx("runtime", "validate", "python:3.11-ml@amd64")
    assert ok.returncode == 0
    assert ok.stdout == b"Valid: python-3.11-ml\n"
    spec = tmp_path / "runtime.yml"
    spec.write_text(
        "name: x\nbogus: 1\ntest: {command: sh}\nmounts: [{source: a, target: /proc}]\n"
    )
    bad = daemon.rnx("runtime", "validate", str(spec))
    assert bad.returncode == 1
    assert b"line 2, column 1" in bad.stdout
    assert b"line 4" in bad.stdout


def test_built_tree_is_root_owned_without_setuid(daemon: RunningDaemon, tmp_path: Path) -> None:
    extra = "cp /opt/runtime/bin/hello /opt/runtime/bin/suid; chmod 4755 /opt/runtime/bin/suid"
    assert result_of(install(daemon, write_runtime(tmp_path / "su", "setuid", extra=extra))).success
    tree = current_build(daemon, "setuid") / "tree"
    for path in [tree, *tree.rglob("*")]:
        info = path.lstat()
        assert (info.st_uid, info.st_gid) == (0, 0), path
        assert not info.st_mode & 0o6000, path


def test_a_fifo_in_the_build_fails_the_install(daemon: RunningDaemon, tmp_path: Path) -> None:
    src = write_runtime(tmp_path / "ff", "fifo", extra="mkfifo /opt/runtime/pipe")
    result = result_of(install(daemon, src))
    assert not result.success
    assert "a FIFO at /opt/runtime/pipe" in result.message
    assert not (daemon.root / "runtimes" / "fifo").exists()


def host_arch() -> str:
    return "arm64" if os.uname().machine in ("aarch64", "arm64") else "amd64"


def test_wrong_arch_or_gpu_installs_unavailable_and_refuses_jobs(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    foreign = "amd64" if host_arch() == "arm64" else "arm64"
    needs_gpu = not Path("/dev/nvidiactl").exists()
    cases = [("foreign", {"arches": foreign})]
    if needs_gpu:
        cases.append(("needsgpu", {"gpu": True}))
    for name, options in cases:
        src = write_runtime(tmp_path / name, name, **options)  # type: ignore[arg-type]
        result = result_of(install(daemon, src))
        assert result.success, result.message
        info = stub(daemon).GetRuntimeInfo(pb.RuntimeInfoReq(runtime=name)).runtime
        assert not info.available
        with pytest.raises(grpc.RpcError) as refused:
            daemon.jobs().RunJob(pb.RunJobRequest(command="true", runtime=name))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        test = stub(daemon).TestRuntime(pb.RuntimeTestReq(runtime=name), timeout=60)
        assert not test.success
        assert "cannot run here" in test.error


def test_unavailable_while_rebuilding(daemon: RunningDaemon, tmp_path: Path) -> None:
    src = write_runtime(tmp_path / "rb", "rebuilt")
    assert result_of(install(daemon, src)).success
    write_runtime(src, "rebuilt", extra="sleep 2")
    chunks = stub(daemon).StreamingInstallRuntimeFromLocal(
        local_request(src, force=True), timeout=120
    )
    assert next(chunks).progress.step == 1
    info = stub(daemon).GetRuntimeInfo(pb.RuntimeInfoReq(runtime="rebuilt")).runtime
    assert not info.available
    assert result_of(list(chunks)).success
    assert stub(daemon).GetRuntimeInfo(pb.RuntimeInfoReq(runtime="rebuilt")).runtime.available


def test_rnx_install_by_name_from_runtimes_dir_with_json(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    write_runtime(tmp_path / "runtimes" / "byname", "byname")
    cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config)]
    done = subprocess.run(
        [*cmd, "--json", "runtime", "install", "byname"],
        cwd=tmp_path, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    assert result["success"] is True
    assert result["runtime_spec"] == "byname"
    missing = subprocess.run(
        [*cmd, "runtime", "install", "nosuch"], cwd=tmp_path, capture_output=True, check=False
    )
    assert missing.returncode == 2
    assert missing.stderr.count(b"\n") == 1
    assert b"no runtime.yml" in missing.stderr
    removed = daemon.rnx("runtime", "remove", "byname")
    assert removed.returncode == 0
    assert removed.stdout.startswith(b"Runtime byname removed (freed 2.9 MiB)")


def test_test_output_is_capped_and_a_slow_test_is_stopped(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    src = write_runtime(tmp_path / "loud", "loud", test_timeout="6s")
    assert result_of(install(daemon, src)).success
    hello = current_build(daemon, "loud") / "tree" / "bin" / "hello"
    hello.write_text("#!/bin/sh\nhead -c 200000 /dev/zero | tr '\\0' x\n")
    loud = stub(daemon).TestRuntime(pb.RuntimeTestReq(runtime="loud"), timeout=60)
    assert loud.success
    assert len(loud.output.encode()) == 64 * 1024
    hello.write_text("#!/bin/sh\nsleep 30\n")
    slow = stub(daemon).TestRuntime(pb.RuntimeTestReq(runtime="loud"), timeout=60)
    assert not slow.success
    assert "did not end within 6s" in slow.error


def test_a_build_network_the_config_does_not_allow(daemon: RunningDaemon, tmp_path: Path) -> None:
    src = write_runtime(tmp_path / "net", "networked", network="bridge")
    with pytest.raises(grpc.RpcError) as refused:
        install(daemon, src)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "runtime.build.networks" in str(refused.value.details())
    assert not (daemon.root / "runtimes" / "networked").exists()


def test_remove_refused_while_a_scheduled_job_will_use_it(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    assert result_of(install(daemon, write_runtime(tmp_path / "sch", "scheduled"))).success
    job = run(daemon.jobs(), "true", runtime="scheduled", schedule="1h")
    wait_status(daemon.jobs(), job, {"SCHEDULED"})
    with pytest.raises(grpc.RpcError) as refused:
        stub(daemon).RemoveRuntime(pb.RuntimeRemoveReq(runtime="scheduled"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert job in str(refused.value.details())
    daemon.jobs().CancelJob(pb.CancelJobReq(uuid=job))
    wait_status(daemon.jobs(), job, {"CANCELED"})
    assert stub(daemon).RemoveRuntime(pb.RuntimeRemoveReq(runtime="scheduled")).success


def test_rnx_interrupted_leaves_the_install_going(daemon: RunningDaemon, tmp_path: Path) -> None:
    src = write_runtime(tmp_path / "ctrlc", "ctrlc", extra="sleep 5")
    cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config)]
    # Started with SIGINT ignored, as from a script's background job: Ctrl-C
    # still ends the follow (the install goes on), as it does for `run -f`.
    ignoring = ["sh", "-c", 'trap "" INT; exec "$0" "$@"']
    proc = subprocess.Popen(
        [*ignoring, *cmd, "runtime", "install", str(src)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    lines = []
    for raw in proc.stderr:  # until the build step's line
        lines.append(raw.decode())
        if "4/6 build" in lines[-1]:
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "the install goes on as job" in rest.decode()
    deadline = time.monotonic() + 60
    while not stub(daemon).GetRuntimeInfo(pb.RuntimeInfoReq(runtime="ctrlc")).found:
        assert time.monotonic() < deadline, "the install stopped with rnx"
        time.sleep(0.1)
