"""A real full disk: a tiny tmpfs mounted for the test."""

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.persist.store import HistoryStore, LogFilter, Marker, Record, read_logs

pytestmark = pytest.mark.privileged


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_enospc_keeps_stored_batches_and_recovers(tiny_fs: Path) -> None:
    ballast = tiny_fs / "ballast"
    ballast.write_bytes(os.urandom(64 * 1024))
    store = HistoryStore(tiny_fs / "logs", segment_bytes=1 << 30, level=1)
    stored: list[Record] = []
    seq = 0
    # incompressible data fills the disk quickly
    with pytest.raises(OSError) as info:
        while True:
            seq += 1
            recs = [Record(1, seq, os.urandom(8000))]
            store.append("j", recs, Marker("s", seq))
            stored.extend(recs)
    assert info.value.errno == errno.ENOSPC
    assert len(stored) > 5
    ballast.unlink()  # space comes back (as after a retention sweep)
    retry = [Record(1, seq, os.urandom(8000))]
    assert store.append("j", retry, Marker("s", seq))
    store.seal("j")
    snap = store.snapshot("j")
    assert snap is not None
    got = [r for chunk in read_logs(snap, LogFilter()) for r in chunk]
    assert got == [*stored, *retry]
