"""What launches keep of the host between them: the allowed paths' kinds for
a second, a file's text until its stat changes."""

from __future__ import annotations

import os
from pathlib import Path

from joblet.isolation.hostview import PROBE_TTL_S, HostView
from joblet.isolation.rootfs import Kind


def test_allowed_paths_are_looked_at_again_after_the_ttl(tmp_path: Path) -> None:
    now = [100.0]
    view = HostView(clock=lambda: now[0])
    path = str(tmp_path / "lib")
    assert view.allowed((path,))[path].kind is Kind.MISSING
    os.mkdir(path)
    now[0] += PROBE_TTL_S / 2
    assert view.allowed((path,))[path].kind is Kind.MISSING  # kept
    now[0] += PROBE_TTL_S
    assert view.allowed((path,))[path].kind is Kind.DIR


def test_a_file_is_read_again_once_it_changed(tmp_path: Path) -> None:
    view = HostView()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.0.0.1\n")
    assert view.text(str(resolv)) == "nameserver 10.0.0.1\n"
    resolv.write_text("nameserver 10.0.0.22\n")  # another size
    assert view.text(str(resolv)) == "nameserver 10.0.0.22\n"
    replacement = tmp_path / "new"
    replacement.write_text("nameserver 10.0.0.33\n")  # same size, another inode
    replacement.replace(resolv)
    assert view.text(str(resolv)) == "nameserver 10.0.0.33\n"
    resolv.unlink()
    assert view.text(str(resolv)) == ""
