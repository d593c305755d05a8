"""Escapes from a real job, one test per class: each runs its attacks inside
a job (tests/security/escape_attacks.py, ctypes system calls), asserts that
every one fails the way the protection makes it fail, and that what the
host shows of the attack's target is unchanged afterwards.

A job is real uid 0 with a reduced capability set, no_new_privs, a seccomp
filter, its own pid, mount, uts, ipc, net and cgroup namespaces and a
pivot_root into read-only binds; docs/SECURITY.md ("Escape classes and the
tests that cover them") names which protection each test depends on.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, wait_status

from joblet.api import joblet_pb2 as pb

pytestmark = [
    pytest.mark.integration,
    pytest.mark.privileged,
    pytest.mark.skipif(platform.machine() != "x86_64", reason="the attacks use x86_64 numbers"),
]

ATTACKS = Path(__file__).with_name("escape_attacks.py").read_text()
SECRET = f"joblet-daemon-secret-{uuid.uuid4().hex}"
Report = dict[str, Any]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """A daemon whose environment holds a secret no job may see."""
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = launch_daemon(tmp_path_factory.mktemp("escapes"), env={"JOBLET_SECRET": SECRET})
    yield running
    running.stop()


def run_attacks(daemon: RunningDaemon, section: str, **hints: str) -> list[Report]:
    """One section of escape_attacks.py in a fresh job: its JSON lines."""
    stub = daemon.jobs()
    argv = ["-c", ATTACKS, json.dumps({"sections": section, **hints})]
    job = stub.RunJob(pb.RunJobRequest(command="python3", args=argv))
    status = wait_status(stub, job.jobUuid, {"COMPLETED", "FAILED"}, timeout=90)
    logs = stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid, noFollow=True))
    out = b"".join(chunk.payload for chunk in logs).decode()
    assert status.exitCode == 0, out
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def results(reports: list[Report], attack: str, key: str = "") -> dict[str, Any]:
    """attack's results, by the value of `key` in each report (or the one result)."""
    found = [r for r in reports if r["attack"] == attack]
    assert found, (attack, reports)
    if not key:
        return {attack: found[0]["result"]}
    return {str(r[key]): r for r in found}


def read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def mount_entries(*points: str) -> dict[str, list[str]]:
    """The host's mountinfo lines of these mount points, without the mount id."""
    found: dict[str, list[str]] = {point: [] for point in points}
    for line in read("/proc/self/mountinfo").splitlines():
        fields = line.split()
        if fields[4] in found:
            found[fields[4]].append(" ".join(fields[2:]))
    return found


def host_state() -> dict[str, Any]:
    """What an escape would change on the host, as the host sees it."""
    cgroup_roots = sorted(Path("/sys/fs/cgroup").glob("*/release_agent"))
    return {
        "files": {
            path: read(path)
            for path in (
                "/proc/sys/kernel/core_pattern",
                "/proc/sys/kernel/modprobe",
                "/proc/sys/net/ipv4/ip_forward",
                "/proc/sys/kernel/sysrq",
                "/proc/sys/kernel/hostname",
                "/proc/modules",
                "/proc/swaps",
                *map(str, cgroup_roots),
            )
        },
        "mounts": mount_entries("/", "/usr", "/proc", "/sys"),
        "keys": "joblet-escape" in read("/proc/keys"),
    }


@pytest.fixture
def host_unchanged() -> Iterator[None]:
    before = host_state()
    yield
    assert host_state() == before


@pytest.mark.usefixtures("host_unchanged")
def test_mounts_remounts_and_pivot_root_fail(daemon: RunningDaemon) -> None:
    reports = run_attacks(daemon, "mounts", host_path=str(daemon.root))
    refused = [
        "remount_root_rw", "remount_usr_rw", "mount_proc", "mount_sysfs", "mount_cgroup_v1",
        "mount_cgroup2", "umount_proc_mask", "pivot_root", "fsopen_proc", "open_tree_clone",
        "mount_setattr_rw", "mount_binfmt_misc", "mount_debugfs",
    ]  # fmt: skip
    for attack in refused:
        assert results(reports, attack) == {attack: "EPERM"}, reports
    for read_kcore in (r for r in reports if r["attack"] == "kcore_read"):
        assert read_kcore["size"] == 0, read_kcore  # still the /dev/null mask


def test_chroot_climb_stays_in_the_jobs_root(daemon: RunningDaemon) -> None:
    """chroot works (CAP_SYS_CHROOT), but ".." from outside the chroot ends at
    the root of the job's mount namespace: the host's root was detached."""
    assert daemon.root.exists()
    reports = run_attacks(daemon, "mounts", host_path=str(daemon.root))
    escape = results(reports, "chroot_escape", "attack")["chroot_escape"]
    assert escape["chroot"] == "ok", escape
    assert escape["work_seen"] is True and escape["host_path_seen"] is False, escape


def test_file_handles_cannot_open_host_inodes(daemon: RunningDaemon) -> None:
    reports = run_attacks(daemon, "mounts", host_path=str(daemon.root))
    assert results(reports, "open_by_handle_at") == {"open_by_handle_at": "EPERM"}
    assert results(reports, "name_to_handle_at") == {"name_to_handle_at": "EPERM"}


@pytest.mark.usefixtures("host_unchanged")
def test_kernel_settings_cgroups_and_sys_are_out_of_reach(daemon: RunningDaemon) -> None:
    reports = run_attacks(daemon, "kernel_files")
    writes = results(reports, "procsys_write", "path")
    assert {"/proc/sys/kernel/core_pattern", "/proc/sys/net/ipv4/ip_forward"} <= set(writes)
    # Read-only /proc/sys gives EROFS; in a user namespace the sysctl's own
    # owner check (host root owns it) refuses first with EACCES.
    refused = ("EROFS", "EACCES")
    for path, report in writes.items():
        assert report["result"] in refused, (path, report)
    if os.path.exists("/proc/sysrq-trigger"):  # absent without CONFIG_MAGIC_SYSRQ
        assert results(reports, "sysrq_trigger_open")["sysrq_trigger_open"] in refused
    # No binfmt_misc in a job's fresh /proc; even there /proc/sys is read-only.
    assert results(reports, "binfmt_register_open")["binfmt_register_open"] in ("ENOENT", "EROFS")
    # No CAP_SYSLOG: EPERM; in a user namespace the file's owner check comes first.
    assert results(reports, "proc_kmsg_read")["proc_kmsg_read"] in ("EPERM", "EACCES")
    for path, report in results(reports, "sys_path", "path").items():
        assert report["exists"] is False, (path, report)  # no sysfs, no cgroupfs in a job
    own = results(reports, "own_cgroups", "attack")["own_cgroups"]
    assert own["paths"] == ["/"], own  # a cgroup namespace rooted at the job's group
    types = results(reports, "mount_types", "attack")["mount_types"]["types"]
    assert not {"sysfs", "cgroup", "cgroup2"} & set(types), types


def test_kernel_wide_proc_entries_keep_their_mode_and_owner(daemon: RunningDaemon) -> None:
    """Every /proc entry that is not a process's is read-only in a job: a
    chmod or chown of one (to what it has: no change either way) is EROFS."""
    reports = run_attacks(daemon, "kernel_files")
    entries = results(reports, "proc_entry", "name")
    assert {"meminfo", "cpuinfo", "sys", "driver", "tty"} & set(entries), entries
    changed = {
        name: r for name, r in entries.items() if (r["chmod"], r["chown"]) != ("EROFS", "EROFS")
    }
    assert not changed, changed


def test_device_nodes_made_in_a_job_do_not_open(daemon: RunningDaemon) -> None:
    """CAP_MKNOD stays (package installs make nodes), but every place a job
    can write is nodev: a node for the host's disk, /dev/mem or /dev/kmsg
    opens nowhere (read-only opens: nothing could be written anyway)."""
    reports = run_attacks(daemon, "devices")
    for name, report in results(reports, "dev_present", "name").items():
        assert report["exists"] is False, (name, report)
    tries = [r for r in reports if r["attack"] == "mknod_open"]
    assert len(tries) == 12, tries
    for attempt in tries:
        assert attempt["open"] in ("EACCES", "ENOENT"), attempt
        assert attempt["mknod"] == "ok" or attempt["open"] == "ENOENT", attempt


def test_namespaces_cannot_be_made_or_joined(daemon: RunningDaemon) -> None:
    reports = run_attacks(daemon, "namespaces")
    for attack in ("unshare_user", "unshare_mount", "clone_newuser"):
        assert results(reports, attack) == {attack: "EPERM"}, reports
    joins = [r for r in reports if r["attack"] == "setns"]
    assert len(joins) == 10 and {r["result"] for r in joins} == {"EPERM"}, joins


def test_other_processes_are_out_of_sight_and_untraceable(daemon: RunningDaemon) -> None:
    stub = daemon.jobs()
    marker = f"joblet-other-{uuid.uuid4().hex[:12]}"
    other = stub.RunJob(pb.RunJobRequest(command="sh", args=["-c", f"sleep 120; : {marker}"]))
    try:
        wait_status(stub, other.jobUuid, {"RUNNING"}, timeout=60)
        reports = run_attacks(daemon, "namespaces", other_job_marker_reversed=marker[::-1])
    finally:
        stub.StopJob(pb.StopJobReq(uuid=other.jobUuid))
    seen = results(reports, "processes", "attack")["processes"]
    assert seen["own_hint_seen"] is True, seen  # the search finds what this job runs
    assert seen["other_job_seen"] is False, seen
    assert seen["pids"][0] == 1 and len(seen["pids"]) <= 4, seen  # tini, python, its children
    assert results(reports, "init_comm", "attack")["init_comm"]["comm"].startswith("memfd:tini")
    assert results(reports, "ptrace_init") == {"ptrace_init": "EPERM"}
    assert results(reports, "process_vm_readv") == {"process_vm_readv": "EPERM"}


# What each privileged call answers in a job. EPERM comes before any effect:
# from the filter, or from the missing capability (checked first in each of
# these). lookup_dcookie is gone from the kernel since 6.8 (ENOSYS without
# the filter).
KERNEL_CALLS = (
    "keyctl", "add_key", "request_key", "bpf_map_create", "perf_event_open", "userfaultfd",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "settimeofday", "clock_settime", "acct", "quotactl",
    "lookup_dcookie", "iopl", "ioperm", "syslog_read_all", "vhangup",
)  # fmt: skip


@pytest.mark.usefixtures("host_unchanged")
def test_privileged_kernel_interfaces_are_refused(daemon: RunningDaemon) -> None:
    reports = run_attacks(daemon, "kernel_calls")
    answers = {attack: results(reports, attack)[attack] for attack in KERNEL_CALLS}
    assert answers == dict.fromkeys(KERNEL_CALLS, "EPERM"), json.dumps(answers)


def test_no_terminal_to_inject_into(daemon: RunningDaemon) -> None:
    """stdin is /dev/null and the job has no controlling terminal: TIOCSTI
    has no terminal of the host's to push input into."""
    reports = run_attacks(daemon, "kernel_calls")
    assert results(reports, "tiocsti_stdin") == {"tiocsti_stdin": "ENOTTY"}
    assert results(reports, "open_tty") == {"open_tty": "ENXIO"}


def test_raw_and_packet_sockets_are_refused_ping_sockets_work(daemon: RunningDaemon) -> None:
    """And the host's abstract unix sockets (named in the network namespace,
    not in the file system) cannot be reached from the job's namespace."""
    name = f"joblet-escape-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind("\0" + name)
        listener.listen(1)
        reports = run_attacks(daemon, "sockets", host_abstract_socket=name)
    assert results(reports, "host_abstract_socket") == {"host_abstract_socket": "ECONNREFUSED"}
    kinds = {kind: r["result"] for kind, r in results(reports, "socket", "kind").items()}
    assert kinds == {
        "inet_raw_icmp": "EPERM", "inet_raw_tcp": "EPERM", "inet6_raw": "EPERM",
        "packet_raw": "EPERM", "packet_dgram": "EPERM", "ping_dgram": "ok",
    }  # fmt: skip


def test_the_job_inherits_no_descriptor_or_environment_of_the_daemon(
    daemon: RunningDaemon,
) -> None:
    reports = run_attacks(daemon, "inherited", secret=SECRET)
    fds = results(reports, "fds", "pid")
    for pid in ("self", "1"):
        links = fds[pid]["fds"]
        assert sorted(links) == ["0", "1", "2"], (pid, links)
        assert links["0"] == "/dev/null", links
        assert links["1"].startswith("pipe:") and links["2"].startswith("pipe:"), links
    for pid, report in results(reports, "environ", "pid").items():
        assert report["secret_seen"] is False, (pid, report)
        assert not [name for name in report["names"] if name.startswith("JOBLET")], report


def test_foreign_system_call_abis_are_killed(daemon: RunningDaemon) -> None:
    """int $0x80 (i386 numbers) and x32 numbers from a job: the filter is
    x86_64's alone, so any call of another ABI kills the caller (SIGSYS)
    before the kernel runs it, getpid included; unshare(CLONE_NEWUSER),
    which the i386 table would otherwise allow uid 0 without CAP_SYS_ADMIN,
    never happens."""
    reports = run_attacks(daemon, "abis")
    i386 = {call: r["result"] for call, r in results(reports, "i386", "call").items()}
    assert set(i386) == {"getpid", "unshare_user", "mount", "keyctl", "setns", "reboot"}, i386
    # A kernel booted with ia32_emulation=false faults on int $0x80 (SIGSEGV)
    # before seccomp sees it: that call did not run either.
    assert set(i386.values()) <= {"signal:SIGSYS", "signal:SIGSEGV"}, i386
    x32 = {call: r["result"] for call, r in results(reports, "x32", "call").items()}
    assert x32 == dict.fromkeys(("getpid", "unshare_user"), "signal:SIGSYS"), x32
