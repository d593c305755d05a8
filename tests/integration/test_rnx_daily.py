"""rnx for daily use, against a real daemon: honest exit codes, Ctrl-C on
`run -f`, names, wait, kill and stop options."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from .conftest import ROOT_NEEDED, RunningDaemon, start_daemon

UUID_LINE = re.compile(rb"^ID: ([0-9a-f-]{36})$", re.MULTILINE)
NODE_GRACE_S = 30  # long, so that a stop ending sooner shows `--time` was used


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = start_daemon(tmp_path_factory.mktemp("daily"), stopGracePeriod=f"{NODE_GRACE_S}s")
    yield running
    running.stop()


def _job_id(output: bytes) -> str:
    match = UUID_LINE.search(output)
    assert match, output
    return match.group(1).decode()


def _status(daemon: RunningDaemon, job: str) -> bytes:
    res = daemon.rnx("status", job)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_command_not_found_exits_127_with_the_reason(daemon: RunningDaemon) -> None:
    res = daemon.rnx("run", "no-such-command-x")
    assert res.returncode == 127, res.stderr
    assert res.stderr.count(b"\n") == 1
    assert b"launch failed: command not found: no-such-command-x" in res.stderr
    assert b"Status: FAILED" in res.stdout


def test_a_file_that_is_not_executable_exits_126(daemon: RunningDaemon) -> None:
    res = daemon.rnx("run", "-f", "/etc/hostname")
    assert res.returncode == 126, res.stderr
    assert b"not executable: /etc/hostname" in res.stderr
    as_json = daemon.rnx("--json", "run", "/etc/hostname")
    assert as_json.returncode == 126 and as_json.stderr == b""
    assert b'"end_reason": "launch failed: not executable: /etc/hostname"' in as_json.stdout


def test_follow_reports_why_a_job_did_not_succeed(daemon: RunningDaemon) -> None:
    res = daemon.rnx("run", "-f", "sh", "-c", "exit 3")
    assert res.returncode == 3
    assert re.search(rb"rnx: job [0-9a-f-]{36} FAILED: exit code 3\n$", res.stderr)
    ok = daemon.rnx("run", "-f", "true")
    assert ok.returncode == 0 and b"rnx: job" not in ok.stderr


def _rnx_process(daemon: RunningDaemon, *args: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _read_until(stream: object, needle: bytes, timeout: float = 30.0) -> bytes:
    import os
    import select

    fd = stream.fileno()  # type: ignore[attr-defined]
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} never came; got {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"stream ended before {needle!r}; got {seen!r}"
            seen += chunk
    return seen


TRAP = "trap 'echo got-int; exit 5' INT; echo ready; while :; do sleep 0.1; done"


def test_ctrl_c_forwards_sigint_to_the_job(daemon: RunningDaemon) -> None:
    proc = _rnx_process(daemon, "run", "-f", "sh", "-c", TRAP)
    try:
        _read_until(proc.stdout, b"ready\n")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert b"got-int" in out
    assert proc.returncode == 5, err
    assert b"sent SIGINT to job" in err and b"FAILED: exit code 5" in err


def test_a_second_ctrl_c_detaches_and_leaves_the_job_running(daemon: RunningDaemon) -> None:
    ignoring = "trap 'echo ignored' INT; echo ready; while :; do sleep 0.1; done"
    proc = _rnx_process(daemon, "run", "-f", "--name", "detach-me", "sh", "-c", ignoring)
    try:
        _read_until(proc.stdout, b"ready\n")
        proc.send_signal(signal.SIGINT)
        _read_until(proc.stderr, b"press Ctrl-C again")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert b"detached from job" in err and b"rnx log -f" in err and b"rnx stop" in err
    assert b"Status: RUNNING" in _status(daemon, "detach-me")
    assert daemon.rnx("kill", "detach-me").returncode == 0
    _wait_for(lambda: b"Status: FAILED" in _status(daemon, "detach-me"))
    assert b"killed by signal 9" in _status(daemon, "detach-me")
    assert daemon.rnx("rm", "detach-me").returncode == 0


def test_jobs_are_addressable_by_unique_name(daemon: RunningDaemon) -> None:
    first = _job_id(daemon.rnx("run", "--name", "nightly", "sleep", "60").stdout)
    assert f"Job ID: {first}".encode() in daemon.rnx("inspect", "nightly").stdout
    second = _job_id(daemon.rnx("run", "--name", "nightly", "sleep", "60").stdout)
    ambiguous = daemon.rnx("stop", "nightly")
    assert ambiguous.returncode == 1
    assert b"ambiguous" in ambiguous.stderr
    assert first.encode() in ambiguous.stderr and second.encode() in ambiguous.stderr
    assert daemon.rnx("stop", first, second).returncode == 0
    assert daemon.rnx("rm", first).returncode == 0
    assert b"Status: STOPPED" in _status(daemon, "nightly")  # unique again
    missing = daemon.rnx("status", "no-such-name")
    assert missing.returncode == 1 and b"no job has that id or name" in missing.stderr


def test_wait_exits_with_the_job_code(daemon: RunningDaemon) -> None:
    job = _job_id(daemon.rnx("run", "sh", "-c", "sleep 1; exit 4").stdout)
    res = daemon.rnx("wait", job)
    assert (res.returncode, res.stdout) == (4, b"4\n")
    ok = _job_id(daemon.rnx("run", "true").stdout)
    both = daemon.rnx("wait", ok, job)
    assert (both.returncode, both.stdout) == (4, b"0\n4\n")


def test_kill_sends_the_signal_and_nothing_more(daemon: RunningDaemon) -> None:
    script = "trap 'echo usr1' USR1; while :; do sleep 0.1; done"
    job = _job_id(daemon.rnx("run", "sh", "-c", script).stdout)
    _wait_for(lambda: b"Status: RUNNING" in _status(daemon, job))
    time.sleep(0.5)  # the shell sets its trap after it starts
    res = daemon.rnx("kill", "--signal", "USR1", job)
    assert res.returncode == 0 and b"Status: RUNNING" in res.stdout
    _wait_for(lambda: b"usr1" in daemon.rnx("log", "--no-follow", job).stdout)
    assert b"Status: RUNNING" in _status(daemon, job)
    bad = daemon.rnx("kill", "-s", "NOPE", job)
    assert bad.returncode == 1 and b"no such signal" in bad.stderr
    assert daemon.rnx("stop", "--time", "1s", job).returncode == 0


@pytest.mark.parametrize("grace", ["1", "1s"])
def test_stop_time_bounds_the_grace_period(daemon: RunningDaemon, grace: str) -> None:
    # The job ignores SIGTERM: only the kill after the grace period ends it.
    job = _job_id(daemon.rnx("run", "sh", "-c", "trap '' TERM; sleep 600").stdout)
    _wait_for(lambda: b"Status: RUNNING" in _status(daemon, job))
    started = time.monotonic()
    res = daemon.rnx("stop", "-t", grace, job)
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - started < NODE_GRACE_S / 2
    assert b"Status: STOPPED" in _status(daemon, job)


def test_stop_with_another_signal(daemon: RunningDaemon) -> None:
    job = _job_id(daemon.rnx("run", "sh", "-c", "trap 'exit 9' INT; sleep 600 & wait").stdout)
    _wait_for(lambda: b"Status: RUNNING" in _status(daemon, job))
    time.sleep(0.5)
    assert daemon.rnx("stop", "--signal", "INT", job).returncode == 0
    assert b"Exit Code: 9" in _status(daemon, job)


def test_a_gpu_job_on_a_node_without_gpus_is_one_line_saying_so(daemon: RunningDaemon) -> None:
    res = daemon.rnx("run", "--gpu", "1", "true")
    assert res.returncode == 1 and res.stderr.count(b"\n") == 1
    assert b"this node has no GPUs" in res.stderr, res.stderr


def test_an_unknown_runtime_is_one_line_naming_it(daemon: RunningDaemon) -> None:
    res = daemon.rnx("run", "--runtime", "python-3.11", "true")
    assert res.returncode != 0 and res.stderr.count(b"\n") == 1
    assert b"python-3.11" in res.stderr and b"not installed" in res.stderr


def test_sizes_and_env_from_the_caller(daemon: RunningDaemon) -> None:
    env = {**os.environ, "FROM_CALLER": "hello"}
    cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config)]
    script = "echo $FROM_CALLER; cat /sys/fs/cgroup/memory.max 2>/dev/null || echo v1"
    res = subprocess.run(
        [*cmd, "run", "-f", "--max-memory", "64M", "-e", "FROM_CALLER", "sh", "-c", script],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    first, second = res.stdout.decode().split()
    assert first == "hello"
    assert second in (str(64 << 20), "v1")


def test_log_takes_docker_flags(daemon: RunningDaemon) -> None:
    job = _job_id(daemon.rnx("run", "--name", "lines", "sh", "-c", "echo a; echo b; echo c").stdout)
    assert daemon.rnx("wait", job).returncode == 0
    assert daemon.rnx("logs", "-n", "2", "lines").stdout == b"b\nc\n"
    assert daemon.rnx("log", "--follow", "--tail", "1", job).stdout == b"c\n"
    stamped = daemon.rnx("logs", "-t", "-n", "2", job).stdout.decode().splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["b", "c"]
    for line in stamped:
        stamp = line.split(" ", 1)[0]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", stamp), stamp


def test_unique_job_names_when_the_node_asks_for_them(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    strict = make_daemon(uniqueJobNames=True)
    first = _job_id(strict.rnx("run", "--name", "only", "sleep", "60").stdout)
    again = strict.rnx("run", "--name", "only", "true")
    assert again.returncode == 1 and again.stderr.count(b"\n") == 1
    assert b"a job named 'only' exists" in again.stderr and first.encode() in again.stderr
    assert strict.rnx("stop", "only").returncode == 0
    assert strict.rnx("rm", "only").returncode == 0
    assert strict.rnx("run", "--name", "only", "true").returncode == 0  # free again
