"""A job that tries to exhaust a resource of the host: processes, memory,
kernel keys, inotify instances. Each attack runs in a real job of a real
daemon; the job is refused or ends, the daemon keeps answering, and the host
is unchanged (or, where it is not yet, the test says exactly how)."""

from __future__ import annotations

import ctypes
import os
import platform
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration.conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, wait_status

from joblet.api import joblet_pb2 as pb

from .exhaustion import (
    FINAL,
    STATUS_P99_S,
    StatusLatency,
    job_cgroup_file,
    log_text,
    stop_quietly,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

MAX_PIDS = 64


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = launch_daemon(
        tmp_path_factory.mktemp("exhaustion"),
        {"cgroup": {"defaults": {"maxPids": MAX_PIDS, "maxMemory": 256}}},
    )
    yield running
    running.stop()


# Every process forks 4 children that do the same, 4 levels deep: 340
# processes if nothing stops it (a cap of the test's own, so that a daemon
# without a pids limit fails the test instead of taking the shared host).
# A refused fork is retried, as a real bomb's would be, and reported once.
BOMB = r"""
import errno, os, sys, time
def spawn(depth):
    told = False
    for _ in range(4):
        while True:
            try:
                pid = os.fork()
                break
            except OSError as exc:
                if not told:
                    os.write(1, f"refused {errno.errorcode[exc.errno]}\n".encode())
                    told = True
                time.sleep(0.01)
        if pid == 0:
            if depth > 1:
                spawn(depth - 1)
            time.sleep(300)
            os._exit(0)
os.write(1, b"bomb\n")
spawn(4)
time.sleep(300)
"""


def _pids_max_events(daemon: RunningDaemon, job_id: str) -> int:
    text = job_cgroup_file(daemon, job_id, "pids.events").read_text()
    found = re.search(r"^max (\d+)$", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def test_a_fork_bomb_stops_at_the_pids_limit_and_can_be_stopped(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    witness = stub.RunJob(pb.RunJobRequest(command="sleep", args=["300"])).jobUuid
    wait_status(stub, witness, {"RUNNING"})
    bomb = stub.RunJob(pb.RunJobRequest(command="python3", args=["-c", BOMB], maxCpu=100))
    job_id = bomb.jobUuid
    try:
        with StatusLatency(stub, witness) as latency:
            wait_until(lambda: b"refused" in log_text(stub, job_id), "a refused fork")
            assert b"refused EAGAIN" in log_text(stub, job_id)
            # Every task the job has, threads included, is in its cgroup:
            # what it adds to the host's processes is pids.current.
            current = int(job_cgroup_file(daemon, job_id, "pids.current").read_text())
            assert current <= MAX_PIDS
            assert _pids_max_events(daemon, job_id) > 0
            wait_until(lambda: len(latency.seconds) >= 100, "100 answers during the bomb")
        p99 = latency.p99()
        print(
            f"GetJobStatus during a fork bomb: {len(latency.seconds)} calls, p99 {p99 * 1e3:.1f} ms"
        )
        assert p99 < STATUS_P99_S
        stub.StopJob(pb.StopJobReq(uuid=job_id))
        assert wait_status(stub, job_id, FINAL, timeout=60).status == "STOPPED"
        assert wait_status(stub, witness, {"RUNNING"}, timeout=1)
    finally:
        stop_quietly(stub, witness, job_id)


ALLOCATE = r"""
import os
chunks = []
while True:
    chunks.append(bytearray(1 << 20))  # zeroed: every page touched
    if len(chunks) % 8 == 0:
        os.write(1, f"allocated {len(chunks)}\n".encode())
"""


def test_memory_exhaustion_kills_only_inside_the_job(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    daemon_pid = daemon.proc.pid
    witness = stub.RunJob(pb.RunJobRequest(command="sleep", args=["300"])).jobUuid
    try:
        wait_status(stub, witness, {"RUNNING"})
        request = pb.RunJobRequest(command="python3", args=["-c", ALLOCATE], maxMemory=48)
        hog = stub.RunJob(request).jobUuid
        status = wait_status(stub, hog, FINAL, timeout=120)
        assert (status.status, status.endReason) == ("FAILED", "out of memory")
        allocated = [int(line.split()[1]) for line in log_text(stub, hog).splitlines()]
        # Killed at the job's own limit, not the node's default (256 MB).
        assert allocated and allocated[-1] < 48, allocated[-5:]
        assert daemon.proc.poll() is None and daemon.proc.pid == daemon_pid
        assert wait_status(stub, witness, {"RUNNING"}, timeout=1)
    finally:
        stop_quietly(stub, witness)


# add_key(2) into the session keyring until refused: a key of root's counts
# against root's quota (kernel.keys.root_maxkeys), shared with the host's
# root, since a job runs as the host's uid 0.
ADD_KEYS = r"""
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
added = 0
for i in range(50):
    payload = b"x" * 512
    ctypes.set_errno(0)
    key = libc.syscall(ctypes.c_long(248), b"user", f"exhaust-{i}".encode(), payload,
                       ctypes.c_long(len(payload)), ctypes.c_long(-3))
    if key < 0:
        print("refused", added, errno.errorcode[ctypes.get_errno()], flush=True)
        break
    added += 1
else:
    print("added", added, flush=True)
"""


def _root_keys() -> tuple[int, int]:
    """(keys, bytes) root owns, from /proc/key-users."""
    for line in Path("/proc/key-users").read_text().splitlines():
        uid, _, rest = line.partition(":")
        if uid.strip() == "0":
            fields = rest.split()
            return int(fields[2].split("/")[0]), int(fields[3].split("/")[0])
    return 0, 0


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the probe uses x86_64 numbers")
def test_a_job_cannot_add_kernel_keys_to_roots_quota(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    keys_before, _ = _root_keys()
    job_id = stub.RunJob(pb.RunJobRequest(command="python3", args=["-c", ADD_KEYS])).jobUuid
    assert wait_status(stub, job_id, FINAL, timeout=60).status == "COMPLETED"
    out = log_text(stub, job_id).decode()
    assert out.strip() == "refused 0 EPERM", out
    # Other processes may hold keys; the job's 50 would show.
    assert _root_keys()[0] < keys_before + 50


# Takes every inotify instance it can, and goes on taking any that another
# process of root's gives back (a daemon killed), until told to release them.
HOLD_INOTIFY = r"""
import ctypes, errno, os, time
libc = ctypes.CDLL(None, use_errno=True)
held = []
def take():
    while len(held) < 1000:
        fd = libc.inotify_init1(0o2000000)
        if fd < 0:
            return errno.errorcode[ctypes.get_errno()]
        held.append(fd)
    return "cap"
print("held", len(held), take(), flush=True)
deadline = time.monotonic() + 60
while not os.path.exists("/work/release") and time.monotonic() < deadline:
    take()
    time.sleep(0.005)
"""


def _host_inotify_init() -> int:
    """0, or the errno of inotify_init1(IN_CLOEXEC) in this (host root) process."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(0o2000000)
    if fd < 0:
        return ctypes.get_errno()
    os.close(fd)
    return 0


def _hold_inotify(daemon: RunningDaemon) -> str:
    """Start a job that takes every inotify instance it can; its id once it holds them."""
    stub = daemon.jobs()
    job_id = str(
        stub.RunJob(pb.RunJobRequest(command="python3", args=["-c", HOLD_INOTIFY])).jobUuid
    )
    wait_until(lambda: b"held" in log_text(stub, job_id), "the job to hold its instances")
    return job_id


def _release(daemon: RunningDaemon, job_id: str) -> None:
    (daemon.workspace(job_id) / "release").touch()
    wait_status(daemon.jobs(), job_id, FINAL, timeout=60)


def test_a_job_cannot_take_the_hosts_inotify_instances(daemon: RunningDaemon) -> None:
    job_id = _hold_inotify(daemon)
    try:
        held = log_text(daemon.jobs(), job_id).decode()
        host = _host_inotify_init()
    finally:
        _release(daemon, job_id)
    assert held.startswith("held") and held.split()[2] == "EMFILE", held
    assert host == 0, f"host root's inotify_init1: {os.strerror(host)} while the job {held}"


def test_the_daemon_restarts_and_follows_logs_without_inotify(tmp_path: Path) -> None:
    # Without a user namespace the job's instances are host root's, which the
    # restarted daemon then finds all taken.
    daemon = launch_daemon(tmp_path, {"joblet": {"userNamespace": "off"}})
    try:
        job_id = _hold_inotify(daemon)
        try:
            daemon.kill9()
            daemon.restart()  # its log hub finds no inotify instance to make
            stub = daemon.jobs()
            script = "import time\nfor i in range(3): print('tick', i, flush=True); time.sleep(0.3)"
            ticker = stub.RunJob(pb.RunJobRequest(command="python3", args=["-c", script])).jobUuid
            live = stub.GetJobLogs(pb.GetJobLogsReq(uuid=ticker), timeout=60)
            assert b"".join(c.payload for c in live) == b"tick 0\ntick 1\ntick 2\n"
            assert wait_status(stub, ticker, FINAL).status == "COMPLETED"
        finally:
            _release(daemon, job_id)
        assert "log following polls" in daemon.log_path.read_text()
    finally:
        daemon.stop()


def test_jobs_run_as_another_user_take_only_that_users_instances(tmp_path: Path) -> None:
    """The way out without user namespaces: joblet.runAsUser. The limit is
    then that uid's, and the host's root keeps its own."""
    daemon = launch_daemon(tmp_path, {"joblet": {"runAsUser": 65534, "runAsGroup": 65534}})
    try:
        job_id = _hold_inotify(daemon)
        try:
            held = log_text(daemon.jobs(), job_id).decode()
            host = _host_inotify_init()
        finally:
            _release(daemon, job_id)
        assert held.split()[2] == "EMFILE", held  # the job met its uid's limit
        assert host == 0, os.strerror(host)
    finally:
        daemon.stop()


# Four processes, each raising its soft limit to the hard one and opening
# files until refused: what any number of them can hold is this times pids.max.
OPEN_FILES = r"""
import errno, os, resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
print("limits", soft, hard, flush=True)
for _ in range(4):
    if os.fork() == 0:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        held = []
        try:
            while True:
                held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as exc:
            print("held", len(held), errno.errorcode[exc.errno], flush=True)
        os._exit(0)
for _ in range(4):
    os.wait()
"""


def _file_max() -> int:
    return int(Path("/proc/sys/fs/file-max").read_text())


def test_a_jobs_processes_together_cannot_fill_the_host_file_table(tmp_path: Path) -> None:
    daemon = launch_daemon(tmp_path)  # the defaults: 1024 pids, maxOpenFiles 4096
    try:
        stub = daemon.jobs()
        job_id = stub.RunJob(pb.RunJobRequest(command="python3", args=["-c", OPEN_FILES])).jobUuid
        assert wait_status(stub, job_id, FINAL, timeout=60).status == "COMPLETED"
        out = log_text(stub, job_id).decode()
    finally:
        daemon.stop()
    limits = [line.split() for line in out.splitlines() if line.startswith("limits")]
    hard = int(limits[0][2])
    held = [line.split() for line in out.splitlines() if line.startswith("held")]
    assert len(held) == 4 and all(h[2] == "EMFILE" and int(h[1]) < hard for h in held), out
    # 1024 processes at the hard limit: at most a quarter of the host's table.
    assert hard * 1024 <= _file_max() // 4 or hard == 64, f"{hard} files x 1024 processes"


# POSIX message queues (10 messages of 8 KiB each by default) until refused,
# held until released.
HOLD_QUEUES = r"""
import ctypes, errno, os, time
libc = ctypes.CDLL(None, use_errno=True)
held = 0
while held < 200:
    ctypes.set_errno(0)
    name = f"/exhaust-{held}".encode()
    fd = libc.mq_open(name, ctypes.c_int(0o100 | 2), ctypes.c_int(0o600), None)
    if fd < 0:
        break
    held += 1
print("queues", held, errno.errorcode.get(ctypes.get_errno(), "none"), flush=True)
deadline = time.monotonic() + 60
while not os.path.exists("/work/release") and time.monotonic() < deadline:
    time.sleep(0.05)
"""


def _host_mq_open() -> int:
    """0, or the errno of creating one default message queue as host root."""
    libc = ctypes.CDLL(None, use_errno=True)
    name = f"/joblet-test-{os.getpid()}".encode()
    ctypes.set_errno(0)
    fd = libc.mq_open(name, ctypes.c_int(0o100 | 0o200 | 2), ctypes.c_int(0o600), None)
    if fd < 0:
        return ctypes.get_errno()
    os.close(fd)
    libc.mq_unlink(name)
    return 0


def test_a_job_leaves_the_host_root_its_message_queues(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = str(stub.RunJob(pb.RunJobRequest(command="python3", args=["-c", HOLD_QUEUES])).jobUuid)
    try:
        wait_until(lambda: b"queues" in log_text(stub, job_id), "the job to hold its queues")
        held = log_text(stub, job_id).decode()
        host = _host_mq_open()
    finally:
        _release(daemon, job_id)
    assert host == 0, f"host root's mq_open: {os.strerror(host)} while the job held {held}"
    count, reason = held.split()[1:3]
    assert reason == "EMFILE" and 0 < int(count) < 5, held  # its own quarter, then refused
