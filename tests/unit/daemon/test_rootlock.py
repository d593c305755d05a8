"""One daemon per root: the lock, who holds it, and what a second one hears."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from joblet.config.model import RootLayout
from joblet.daemon import rootlock
from joblet.errors import FailedPrecondition


@pytest.fixture
def layout(tmp_path: Path) -> RootLayout:
    found = RootLayout(tmp_path / "root")
    found.run.mkdir(parents=True)
    return found


def test_nobody_holds_a_root_never_served(layout: RootLayout) -> None:
    assert rootlock.holder(layout) is None


def test_the_holder_is_named_and_a_second_daemon_is_refused(layout: RootLayout) -> None:
    fd = rootlock.hold_root(layout)
    try:
        assert rootlock.holder(layout) == os.getpid()
        with pytest.raises(FailedPrecondition) as refused:
            rootlock.hold_root(layout)
        assert str(refused.value) == (
            f"another joblet daemon (pid {os.getpid()}) serves {layout.root}"
        )
    finally:
        os.close(fd)
    assert rootlock.holder(layout) is None  # released with the fd


def test_a_daemon_that_died_leaves_the_root_free(layout: RootLayout) -> None:
    script = (
        "import os, sys; from pathlib import Path; from joblet.config.model import RootLayout;"
        "from joblet.daemon.rootlock import hold_root;"
        f"hold_root(RootLayout(Path({str(layout.root)!r}))); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    assert (layout.run / rootlock.LOCK_FILE).exists()
    assert rootlock.holder(layout) is None
    os.close(rootlock.hold_root(layout))


def test_the_lock_is_not_inherited_by_exec(layout: RootLayout) -> None:
    fd = rootlock.hold_root(layout)
    try:
        child = subprocess.Popen(["sleep", "5"], close_fds=False)
    finally:
        os.close(fd)
    try:
        assert rootlock.holder(layout) is None
    finally:
        child.kill()
        child.wait()
