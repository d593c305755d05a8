"""Making the jobs' user namespace on the real kernel, and the launcher's
answer when the kernel (here: a /proc that has no such process) refuses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from joblet.isolation import userns
from joblet.isolation.launcher import _user_namespace

pytestmark = pytest.mark.privileged


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (maps ids of the host's user namespace)")


def test_the_namespace_maps_the_range_and_is_owned_by_its_base() -> None:
    fd = userns.create(userns.IdMap())
    try:
        ns = os.readlink(f"/proc/self/fd/{fd}")
        assert ns.startswith("user:") and ns != os.readlink("/proc/self/ns/user")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - reported through the exit code
            ok = False
            try:
                userns.enter(fd)
                with open("/proc/self/uid_map") as f:
                    ok = f.read().split() == ["0", str(userns.BASE_ID), str(userns.ID_COUNT)]
                ok = ok and os.getuid() == 0 and os.getgroups() == []
            finally:
                os._exit(0 if ok else 1)
        assert os.waitpid(pid, 0)[1] == 0
    finally:
        os.close(fd)


def test_auto_falls_back_with_the_reason_and_on_refuses_to_start(tmp_path: Path) -> None:
    fd, note = _user_namespace("auto", procfs=str(tmp_path))
    assert fd == -1 and note.startswith("unavailable (cannot map the user namespace")
    with pytest.raises(SystemExit, match="cannot start: user namespaces"):
        _user_namespace("on", procfs=str(tmp_path))
    assert _user_namespace("off", procfs=str(tmp_path)) == (-1, "off")
    fd, note = _user_namespace("auto")
    os.close(fd)
    assert note == f"on: job ids 0-65535 are host ids {userns.BASE_ID}-{userns.BASE_ID + 65535}"
