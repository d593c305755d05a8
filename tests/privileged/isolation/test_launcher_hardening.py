"""The job cannot undo its isolation: capabilities, no_new_privs, seccomp."""

from __future__ import annotations

import pytest
from isolation_harness import Harness, sh

pytestmark = pytest.mark.privileged

KEYCTL = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "nr = {'x86_64': 250, 'aarch64': 219}[os.uname().machine]\n"
    "r = libc.syscall(nr, 0, 0, 0, 0, 0)\n"
    "print(r, ctypes.get_errno())\n"
)


async def test_mount_umount_and_sethostname_fail(launcher: Harness) -> None:
    script = (
        "mount -t tmpfs none /tmp && echo mounted; "
        "umount /proc && echo unmounted; "
        "hostname evil && echo renamed; "
        "mount -o remount,rw /usr && echo remounted; echo end"
    )
    result = await launcher.run(sh(script))
    assert result.stdout.split() == ["end"]


async def test_sysrq_trigger_is_not_writable(launcher: Harness) -> None:
    result = await launcher.run(
        sh("echo h > /proc/sysrq-trigger && echo wrote; cat /proc/kcore | wc -c")
    )
    assert "wrote" not in result.stdout
    assert result.stdout.split() == ["0"]


async def test_user_namespaces_cannot_be_created(launcher: Harness) -> None:
    result = await launcher.run(sh("unshare -U true; echo rc=$?; unshare -n true; echo rc=$?"))
    assert "rc=0" not in result.stdout
    assert "Operation not permitted" in result.stderr


async def test_keyctl_fails_with_eperm(launcher: Harness) -> None:
    result = await launcher.run(["python3", "-c", KEYCTL])
    assert result.stdout.split() == ["-1", "1"]


async def test_capabilities_are_the_default_set(launcher: Harness) -> None:
    result = await launcher.run(
        sh("grep -E '^(CapEff|CapBnd|CapInh|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status")
    )
    status = dict(line.split(":\t") for line in result.stdout.splitlines())
    assert int(status["CapEff"], 16) == int(status["CapBnd"], 16) == 0xA80405FB
    assert int(status["CapInh"], 16) == int(status["CapAmb"], 16) == 0
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"


async def test_ptrace_is_refused(launcher: Harness) -> None:
    script = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print(libc.ptrace(16, 1, 0, 0), ctypes.get_errno())\n"  # PTRACE_ATTACH to init
    )
    result = await launcher.run(["python3", "-c", script])
    assert result.stdout.split() == ["-1", "1"]


async def test_unprivileged_uid_has_no_capabilities(launcher: Harness) -> None:
    result = await launcher.run(
        sh("id -u; id -g; grep CapEff /proc/self/status; touch /work/x || echo denied"),
        uid=1000,
        gid=1000,
    )
    lines = result.stdout.split("\n")
    assert lines[:2] == ["1000", "1000"]
    assert int(lines[2].split()[1], 16) == 0
