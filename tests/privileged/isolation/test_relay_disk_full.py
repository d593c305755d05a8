"""The log relay on a file system that fills up: output is dropped with one
note, the relay goes on, and output is recorded again once there is room."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.isolation import relay as relay_module
from joblet.isolation.relay import LogRelay
from joblet.logs.format import Stream, decode_records

pytestmark = pytest.mark.privileged


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def fill(path: Path) -> None:
    """Write zeros to `path` until the file system is full."""
    with open(path, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)


def test_full_disk_drops_output_with_one_note_then_resumes(
    small_fs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Look for room at every record (raising=False: the test must run, and
    # fail, against a relay without these knobs too).
    monkeypatch.setattr(relay_module, "RETRY_S", 0.0, raising=False)
    monkeypatch.setattr(relay_module, "RESUME_FREE_BYTES", 64 * 1024, raising=False)
    log = small_fs / "output.log"
    relay = LogRelay(str(log), max_bytes=1 << 30)
    try:
        relay.record(Stream.STDOUT, b"before\n")
        fill(small_fs / "filler")
        lost = [b"lost %d " % i + b"x" * 3000 + b"\n" for i in range(200)]
        for data in lost:  # far more than any slack left in the last page
            relay.record(Stream.STDOUT, data)
        assert relay.dropped > 0
        (small_fs / "filler").unlink()
        relay.record(Stream.STDOUT, b"after\n")
    finally:
        relay.close()
    records, used = decode_records(log.read_bytes())
    assert used == log.stat().st_size  # whole records only, nothing cut short
    notes = [r.data for r in records if r.stream is Stream.SYSTEM]
    assert notes == [
        b"output dropped: no space left on device; it resumes once the log can be written again\n"
    ]
    out = [r.data for r in records if r.stream is Stream.STDOUT]
    assert out[0] == b"before\n" and out[-1] == b"after\n"
    assert len(b"".join(out)) + relay.dropped == len(b"before\nafter\n" + b"".join(lost))
