"""What a job sees and may do, checked
through a real daemon on the real kernel."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from joblet.api import joblet_pb2 as pb

from .conftest import ROOT_NEEDED, RunningDaemon, wait_status
from .test_isolation_support import (
    job_pids,
    logs,
    run,
    run_sh,
    start_isolation_daemon,
    status_field,
    stop_isolation_daemon,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.privileged]

SECRET_VAR = "JOBLET_SECRET_TEST"
# Variables every job gets by design (jobs/environment.py) or its shell sets.
MASKED_PROC_FILES = ("kcore", "keys", "timer_list", "sched_debug")
JOB_BASE_ENV = {"PATH", "HOME", "LANG", "PWD", "TMPDIR", "SHLVL", "_", "TERM", "HOSTNAME"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """A daemon whose own environment holds a variable no job may see."""
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = start_isolation_daemon(tmp_path_factory.mktemp("iso"), env={SECRET_VAR: "1"})
    yield running
    stop_isolation_daemon(running)


def test_ps_shows_only_the_jobs_own_processes(daemon: RunningDaemon) -> None:
    status, out = run_sh(daemon.jobs(), "ps -e -o pid=,comm=")
    assert status.status == "COMPLETED"
    procs = {int(pid): comm for pid, comm in (line.split() for line in out.splitlines())}
    # The job's own init is PID 1: tini, exec'd from a sealed copy named after it.
    assert procs[1] == "memfd:tini"
    assert sorted(comm for pid, comm in procs.items() if pid != 1) == ["ps", "sh"]
    assert len(procs) == 3


def test_hostname_is_the_job_name_or_short_id(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    status, out = run_sh(stub, "hostname; cat /etc/hostname", name="iso-named")
    assert out.split() == ["iso-named", "iso-named"]
    status, out = run_sh(stub, "hostname")
    assert out.strip() == status.uuid[:8] and out.strip() != os.uname().nodename


def test_host_files_outside_allowed_mounts_are_absent(daemon: RunningDaemon) -> None:
    secret_dir = Path(f"/var/lib/joblet-test-{uuid.uuid4().hex[:8]}")
    secret_dir.mkdir(parents=True)
    try:
        (secret_dir / "secret").write_text("host secret\n")
        script = (
            f"cat {secret_dir}/secret; test -e {secret_dir} && echo DIR-VISIBLE; "
            "test -e /etc/shadow && echo SHADOW-VISIBLE; test -e /var && echo VAR-VISIBLE; "
            f"test -e {Path.cwd()} && echo CWD-VISIBLE; echo root: $(ls -A /root)"
        )
        status, out = run_sh(daemon.jobs(), script)
    finally:
        shutil.rmtree(secret_dir)
    assert status.status == "COMPLETED"
    assert "host secret" not in out and "No such file" in out
    assert "VISIBLE" not in out
    # /root holds only the allowed mounts under it (none may be there).
    allowed = yaml.safe_load(daemon.config_path.read_text())["filesystem"]["allowedMounts"]
    under_root = sorted(Path(m).name for m in allowed if Path(m).parent == Path("/root"))
    expected = " ".join(["root:"] + [n for n in under_root if Path("/root", n).exists()])
    assert out.splitlines()[-1] == expected


def test_allowed_mounts_are_read_only(daemon: RunningDaemon) -> None:
    probe = Path("/usr/joblet-iso-probe")
    script = (
        f"touch {probe} && echo WROTE-USR; echo x >> /etc/passwd && echo WROTE-PASSWD; "
        "mkdir /lib/joblet-iso && echo WROTE-LIB; mount -o remount,rw /usr && echo REMOUNTED; "
        "touch /work/ok && echo WORK-OK; "
        "awk '$5 == \"/usr\" {print $6}' /proc/self/mountinfo"
    )
    status, out = run_sh(daemon.jobs(), script)
    assert status.status == "COMPLETED"
    assert "WROTE" not in out and "REMOUNTED" not in out
    # In a user namespace (JOBLET_TEST_USERNS=on) the job's root does not own
    # /etc/passwd: the write is refused before the mount's read-only flag counts.
    refused = out.count("Read-only file system") + out.count("cannot create /etc/passwd: Perm")
    assert refused >= 3 and "Read-only file system" in out
    assert "WORK-OK" in out  # the workspace alone is writable
    assert out.splitlines()[-1].split(",")[0] == "ro"
    assert not probe.exists()


def test_mount_umount_sethostname_sysrq_fail(daemon: RunningDaemon) -> None:
    script = (
        "mount -t tmpfs none /tmp && echo MOUNTED; umount /proc && echo UNMOUNTED; "
        "umount -l /work && echo UNMOUNTED-WORK; hostname evil && echo RENAMED; "
        "printf h > /proc/sysrq-trigger && echo SYSRQ; hostname; "
        f"for f in {' '.join(MASKED_PROC_FILES)}; do "
        'test -e /proc/$f && stat -L -c "$f %F %t:%T" /proc/$f; done; echo end'
    )
    status, out = run_sh(daemon.jobs(), script, name="iso-mnt")
    assert status.status == "COMPLETED"
    for word in ("MOUNTED", "UNMOUNTED", "UNMOUNTED-WORK", "RENAMED"):
        assert word not in out.split()
    lines = out.splitlines()
    assert "iso-mnt" in lines
    # A sensitive /proc file a job can see is /dev/null (char 1:3), never the kernel's.
    masked = lines[lines.index("iso-mnt") + 1 : -1]
    assert len(masked) == sum(Path("/proc", f).exists() for f in MASKED_PROC_FILES)
    assert all(line.endswith("character special file 1:3") for line in masked), masked
    # sysrq-trigger is absent here or a read-only bind of itself: the write fails.
    assert "SYSRQ" not in out.split()


def test_only_fds_0_to_2_are_open(daemon: RunningDaemon) -> None:
    status, out = run_sh(daemon.jobs(), "ls /proc/$$/fd")
    assert status.status == "COMPLETED"
    assert out.split() == ["0", "1", "2"]


def test_environment_holds_no_daemon_variables(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    job_id = run(stub, "sh", "-c", "env; exec sleep 30")
    wait_status(stub, job_id, {"RUNNING"})
    log = daemon.root / "jobs" / job_id / "output.log"
    try:
        wait_for(lambda: b"JOB_ID=" in log.read_bytes(), 30, "the job's env output")
        # The init's environment, read on the host: nothing of the daemon's.
        pids = job_pids(daemon, job_id)
        init = next(p for p in pids if status_field(p, "NSpid").split()[-1:] == ["1"])
        init_env = Path(f"/proc/{init}/environ").read_bytes().split(b"\0")
        assert not any(item.startswith(SECRET_VAR.encode()) for item in init_env)
    finally:
        stub.StopJob(pb.StopJobReq(uuid=job_id))
    env = dict(line.split("=", 1) for line in logs(stub, job_id).splitlines() if "=" in line)
    assert env["JOB_ID"] == job_id
    assert SECRET_VAR not in env
    daemon_env = {*os.environ, SECRET_VAR}
    leaked = (set(env) & daemon_env) - JOB_BASE_ENV
    assert not leaked


def test_another_jobs_workspace_is_invisible(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    job_a = run(stub, "sh", "-c", f"echo mine > /work/{marker}; sleep 30")
    try:
        wait_status(stub, job_a, {"RUNNING"})
        written = daemon.workspace(job_a) / marker
        wait_for(written.exists, 30, "job A's marker")
        # /usr is the host's read-only bind, the same in every job.
        script = (
            "ls -A /work; find / -path /proc -prune -o -path /usr -prune "
            f"-o -name {marker} -print; "
            f"grep -c {job_a} /proc/self/mountinfo; echo end"
        )
        status, out = run_sh(stub, script)
    finally:
        stub.StopJob(pb.StopJobReq(uuid=job_a))
    assert status.status == "COMPLETED"
    assert out.split() == ["0", "end"]  # /work empty, marker nowhere, no mount of A's


def test_symlink_to_etc_shadow_is_not_followed(daemon: RunningDaemon) -> None:
    uploads = [pb.FileUpload(path="data.txt", content=b"payload\n", mode=0o644)]
    script = "ln -s /etc/shadow /work/x; cat /work/data.txt; cat /work/x; echo end"
    status, out = run_sh(daemon.jobs(), script, uploads=uploads)
    assert out.startswith("payload\n") and out.endswith("end\n")
    assert "No such file" in out
    shadow_first = Path("/etc/shadow").read_text().split(":", 1)[0] + ":"
    assert shadow_first not in out
    assert (daemon.workspace(status.uuid) / "x").is_symlink()  # the job's link, never followed here


def test_user_namespaces_and_keyctl_fail(daemon: RunningDaemon) -> None:
    keyctl = (
        "import ctypes, os; libc = ctypes.CDLL(None, use_errno=True)\n"
        "for nr in (248, 249, 250):  # add_key, request_key, keyctl on x86_64\n"
        "    rc = libc.syscall(nr, 0, 0, 0, 0, 0)\n"
        "    print(nr, rc, os.strerror(ctypes.get_errno()))\n"
    )
    stub = daemon.jobs()
    _, out = run_sh(stub, "unshare -U true && echo USERNS; unshare -U -r true; echo rc=$?")
    assert "USERNS" not in out and "Operation not permitted" in out
    assert out.splitlines()[-1] != "rc=0"
    if os.uname().machine != "x86_64":
        pytest.skip("keyctl syscall numbers are x86_64's")
    job_id = run(stub, "python3", "-c", keyctl)
    out = logs(stub, job_id)
    assert out.splitlines() == [f"{nr} -1 Operation not permitted" for nr in (248, 249, 250)]
