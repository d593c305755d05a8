"""Making the jobs' user namespace on the real kernel, and the launcher's
answer when the kernel (here: a /proc that has no such process) refuses.

userns.create forks and must be called while single-threaded, as the
launcher does at its start; pytest's own process is not (gRPC's threads from
earlier tests), so each check runs in a fresh interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from joblet.isolation import userns

pytestmark = pytest.mark.privileged

MAPS_AND_ENTERS = """
import os
from joblet.isolation import userns
fd = userns.create(userns.IdMap())
ns = os.readlink(f"/proc/self/fd/{fd}")
assert ns.startswith("user:") and ns != os.readlink("/proc/self/ns/user"), ns
pid = os.fork()
if pid == 0:
    ok = False
    try:
        userns.enter(fd)
        with open("/proc/self/uid_map") as f:
            ok = f.read().split() == ["0", str(userns.BASE_ID), str(userns.ID_COUNT)]
        ok = ok and os.getuid() == 0 and os.getgroups() == []
    finally:
        os._exit(0 if ok else 1)
assert os.waitpid(pid, 0)[1] == 0, "inside the namespace: wrong map, uid or groups"
print("ok")
"""

FALLS_BACK = """
import os, sys
from joblet.isolation import userns
from joblet.isolation.launcher import _user_namespace
fake = sys.argv[1]
fd, note = _user_namespace("auto", procfs=fake)
assert fd == -1 and note.startswith("unavailable (cannot map the user namespace"), note
try:
    _user_namespace("on", procfs=fake)
    raise AssertionError("mode on started without a user namespace")
except SystemExit as exc:
    assert "cannot start: user namespaces" in str(exc), exc
assert _user_namespace("off", procfs=fake) == (-1, "off")
fd, note = _user_namespace("auto")
os.close(fd)
base = userns.BASE_ID
assert note == f"on: job ids 0-65535 are host ids {base}-{base + 65535}", note
print("ok")
"""


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (maps ids of the host's user namespace)")


def _host_allows_user_namespaces() -> str:
    """Why the kernel refuses root a user namespace here, or "" where it allows one."""
    tool = shutil.which("unshare")
    if tool is None:
        return ""
    done = subprocess.run([tool, "--user", "true"], check=False, capture_output=True, text=True)
    return "" if done.returncode == 0 else f"unshare --user: {done.stderr.strip()}"


def _run(code: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        refused = _host_allows_user_namespaces()
        if refused:
            pytest.skip(f"this host refuses user namespaces ({refused})")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_namespace_maps_the_range_and_is_owned_by_its_base() -> None:
    _run(MAPS_AND_ENTERS)


def test_auto_falls_back_with_the_reason_and_on_refuses_to_start(tmp_path: Path) -> None:
    _run(FALLS_BACK, str(tmp_path))


def test_a_refusal_says_why() -> None:
    # A base id no uid can have: setresuid fails in the child, and
    # the message carries the child's own reason, not a bare "refused".
    with pytest.raises(userns.UserNamespaceUnavailable, match=r"refused to create.*: .+"):
        _run_in_process_refusal()


def _run_in_process_refusal() -> None:
    userns.create(userns.IdMap(base=2**40, count=1))
