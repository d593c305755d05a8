"""Unprivileged OS-facing parts: inotify, the log relay, the root plan on a temp tree."""

from __future__ import annotations

import os
from pathlib import Path

from joblet.isolation import libc, rootfs
from joblet.isolation.relay import LogRelay
from joblet.logs.format import Stream, decode_records


def test_inotify_reports_writes(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"")
    with libc.Inotify() as ino:
        wd = ino.add_watch(str(log), libc.IN_MODIFY)
        assert ino.read_events() == []
        with log.open("ab") as f:
            f.write(b"x")
        assert (wd, libc.IN_MODIFY, "") in ino.read_events()
        ino.rm_watch(wd)


def test_relay_frames_and_truncates(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    relay = LogRelay(str(log), max_bytes=10)
    read_end, write_end = os.pipe()
    os.write(write_end, b"hello")
    assert relay.pump(read_end, Stream.STDOUT)
    relay.record(Stream.STDERR, b"0123456789")
    relay.record(Stream.STDOUT, b"dropped")
    os.close(write_end)
    assert not relay.pump(read_end, Stream.STDOUT)
    relay.close()
    os.close(read_end)
    recs, used = decode_records(log.read_bytes())
    assert used == log.stat().st_size
    assert [(r.stream, r.data) for r in recs[:2]] == [
        (Stream.STDOUT, b"hello"),
        (Stream.STDERR, b"01234"),
    ]
    assert recs[2].stream is Stream.SYSTEM and len(recs) == 3


def test_probe_host_tells_kinds_apart(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    (tmp_path / "l").symlink_to("d")
    found = rootfs.probe_host([str(tmp_path / n) for n in ("d", "f", "l", "none")])
    kinds = [found[str(tmp_path / n)].kind for n in ("d", "f", "l", "none")]
    assert kinds == [rootfs.Kind.DIR, rootfs.Kind.FILE, rootfs.Kind.SYMLINK, rootfs.Kind.MISSING]
    assert found[str(tmp_path / "l")].link == "d"


ETC_FILES = {"hostname": b"j\n", "hosts": b"127.0.0.1\tlocalhost\n", "resolv.conf": b""}


def _plan(allowed: dict[str, rootfs.HostEntry]) -> list[rootfs.Op]:
    inputs = rootfs.RootInputs("/j/root", allowed, "/j/work", ETC_FILES, 1 << 20)
    return rootfs.plan_root(inputs)


def test_plan_binds_read_only_and_recreates_symlinks() -> None:
    d, f = rootfs.HostEntry(rootfs.Kind.DIR), rootfs.HostEntry(rootfs.Kind.FILE)
    ops = _plan(
        {
            "/usr": d,
            "/bin": rootfs.HostEntry(rootfs.Kind.SYMLINK, "usr/bin"),
            "/bin/extra": d,  # below a symlink: skipped, never mounted through it
            "/etc/passwd": f,
            "/nope": rootfs.HostEntry(rootfs.Kind.MISSING),
        }
    )
    assert rootfs.MakeSymlink("usr/bin", "/j/root/bin") in ops
    mounts = [op for op in ops if isinstance(op, rootfs.Mount)]
    targets = [m.target for m in mounts]
    assert "/j/root/usr" in targets and "/j/root/etc/passwd" in targets
    assert not any("extra" in t or "nope" in t for t in targets)
    usr = targets.index("/j/root/usr")
    # The allowed binds are protected together: one recursive call on the
    # root after the last of them, then the root's tmpfs alone made writable.
    protect = ops.index(rootfs.Protect("/j/root", rootfs.RO_ATTRS))
    assert ops.index(mounts[usr]) < protect
    assert max(ops.index(m) for m in mounts if m.source in ("/usr", "/etc/passwd")) < protect
    clear = rootfs.Protect("/j/root", 0, clear=libc.MOUNT_ATTR_RDONLY, recursive=False)
    assert ops[protect + 1] == clear
    assert protect < ops.index(next(m for m in mounts if m.fstype == "proc"))
    assert ops.index(rootfs.MakeFile("/j/root/etc/passwd")) < ops.index(
        rootfs.Mount("/etc/passwd", "/j/root/etc/passwd", None, libc.MS_BIND | libc.MS_REC)
    )
    for op in ops:
        target = str(getattr(op, "target", None) or getattr(op, "path", "/j/root"))
        assert target == "/" or target.startswith("/j/root")


def test_plan_builds_proc_dev_tmp_work_and_etc() -> None:
    ops = _plan({})
    by_target = {op.target: op for op in ops if isinstance(op, rootfs.Mount)}
    assert by_target["/j/root/proc"].fstype == "proc"
    proc = next(op for op in ops if isinstance(op, rootfs.ProcEntries))
    assert proc.proc == "/j/root/proc" and ops.index(proc) > ops.index(by_target["/j/root/proc"])
    assert "kcore" in proc.masked and {"sys", "sysrq-trigger", "meminfo"} <= set(proc.readonly)
    assert by_target["/j/root/tmp"].data == "mode=1777,size=1048576"
    assert by_target["/j/root/work"].source == "/j/work"
    assert by_target["/j/root/dev/pts"].fstype == "devpts"
    assert rootfs.WriteFile("/j/root/etc/hosts", ETC_FILES["hosts"]) in ops
    assert "/j/root/etc/hosts" not in by_target  # written into the root, not bound from the host
    assert by_target["/j/root/dev/null"].source == "/dev/null"
    assert "/j/root/sys" not in by_target
    assert ops[0] == rootfs.Mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
