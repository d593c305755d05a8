"""Pure parts of the isolation layer: paths, capabilities, /etc files, records."""

from __future__ import annotations

import os

import pytest

from joblet.isolation import caps, etcfiles, records, wire
from joblet.isolation.libc import parse_inotify_events
from joblet.isolation.paths import UnsafePath, join_under, resolve_command


def test_join_under_stays_inside_root() -> None:
    assert join_under("/r", "/usr/bin") == "/r/usr/bin"
    assert join_under("/r", "a//b/./c") == "/r/a/b/c"
    assert join_under("/r", "/") == "/r"
    with pytest.raises(UnsafePath):
        join_under("/r", "/usr/../../etc")
    with pytest.raises(UnsafePath):
        join_under("/r", "/a\0b")


def test_resolve_command_follows_path_order() -> None:
    present = {"/usr/bin/python3", "/bin/python3", "/opt/tool"}
    found = resolve_command("python3", "/usr/local/bin:/usr/bin:/bin", present.__contains__)
    assert found == "/usr/bin/python3"
    assert resolve_command("/opt/tool", "", present.__contains__) == "/opt/tool"
    assert resolve_command("./tool", "/opt", present.__contains__) is None
    assert resolve_command("missing", "/usr/bin", present.__contains__) is None
    assert resolve_command("", "/usr/bin", present.__contains__) is None
    assert resolve_command("python3", None, present.__contains__) == "/usr/bin/python3"


def test_capability_masks() -> None:
    assert caps.caps_mask(caps.DEFAULT_CAPS) == 0xA80405FB
    assert caps.caps_from_mask(0xA80405FB) == caps.DEFAULT_CAPS
    dropped = caps.caps_to_drop(caps.DEFAULT_CAPS, 40)
    assert 21 in dropped  # CAP_SYS_ADMIN
    assert 16 in dropped and 19 in dropped  # SYS_MODULE, SYS_PTRACE
    assert not set(dropped) & caps.DEFAULT_CAPS
    assert len(dropped) == 41 - len(caps.DEFAULT_CAPS)
    assert caps.parse_last_cap("40\n") == 40


def test_hosts_file_names_the_job_and_extra_hosts() -> None:
    text = etcfiles.render_hosts("job-1", {"db": "10.0.0.5"})
    assert "127.0.0.1\tlocalhost" in text.splitlines()
    assert "127.0.1.1\tjob-1" in text.splitlines()
    assert text.endswith("10.0.0.5\tdb\n")
    assert etcfiles.render_hostname("job-1") == "job-1\n"


def test_resolv_conf_skips_loopback_nameservers() -> None:
    host = "# comment\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nsearch corp.example\n"
    assert etcfiles.render_resolv_conf(host) == "nameserver 10.1.1.1\nsearch corp.example\n"
    only_stub = etcfiles.render_resolv_conf("nameserver 127.0.0.53\n")
    assert only_stub.startswith("nameserver 8.8.8.8\n")


def test_proc_stat_parsing_survives_odd_command_names() -> None:
    fields = " ".join(str(n) for n in range(4, 30))
    state, ticks = records.parse_start_ticks(f"42 (a) b (c)) S {fields}")
    assert state == "S"
    assert ticks == 22  # field 22 of stat is the 20th after the state


def test_exit_from_status() -> None:
    exited = records.exit_from_status("j", 3 << 8, 5)
    assert (exited.exit_code, exited.signal, exited.ended_at_ns) == (3, 0, 5)
    killed = records.exit_from_status("j", 9, 5)
    assert (killed.exit_code, killed.signal) == (137, 9)


def test_running_records_round_trip(tmp_path: os.PathLike[str]) -> None:
    state = str(tmp_path)
    rec = records.RunningRecord("j1", 123, 456, "/jobs/j1")
    records.save_running(state, rec)
    assert records.load_running(state) == [rec]
    records.drop_running(state, "j1")
    records.drop_running(state, "j1")
    assert records.load_running(state) == []


def test_wire_frames() -> None:
    buf = bytearray(wire.encode({"op": "ping"}) + wire.encode({"op": "list"}))
    buf += wire.encode({"op": "launch", "spec": {"env": {"V": "é" * 10}}})[:7]
    bodies = wire.split_frames(buf)
    assert [wire.decode(body) for body in bodies] == [{"op": "ping"}, {"op": "list"}]
    assert len(buf) == 7  # the incomplete frame stays for the next read
    assert wire.encode({"a": 1}) == b"\x00\x00\x00\x07" + b'{"a":1}'
    with pytest.raises(ValueError):
        wire.decode(b"[1]")


def test_wire_takes_a_large_frame_and_refuses_an_oversized_one() -> None:
    big = {"op": "launch", "env": {f"V{i}": "x" * 170_000 for i in range(9)}}
    encoded = wire.encode(big)
    assert len(encoded) > 1_500_000
    buf = bytearray()
    for start in range(0, len(encoded), 65536):  # as the socket hands it over
        buf += encoded[start : start + 65536]
        bodies = wire.split_frames(buf)
    assert [wire.decode(body) for body in bodies] == [big]
    assert not buf
    with pytest.raises(wire.FrameTooLarge):
        wire.split_frames(bytearray(wire.PREFIX.pack(wire.MAX_FRAME + 1)))


def test_inotify_event_parsing() -> None:
    import struct

    one = struct.pack("iIII", 1, 2, 0, 16) + b"out.log".ljust(16, b"\0")
    two = struct.pack("iIII", 3, 0x400, 0, 0)
    assert parse_inotify_events(one + two) == [(1, 2, "out.log"), (3, 0x400, "")]


def test_a_damaged_running_record_is_reported_and_moved_aside(
    tmp_path: os.PathLike[str], capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(tmp_path)
    good = records.RunningRecord("j1", 123, 456, "/jobs/j1")
    records.save_running(state, good)
    for name, text in (("j2.json", '{"job_id": "j2", "pid'), ("j3.json", '["not", "a record"]')):
        with open(os.path.join(state, name), "w") as f:
            f.write(text)
    assert records.load_running(state) == [good]
    said = capsys.readouterr().err
    assert "j2.json" in said and "j3.json" in said
    left = sorted(os.listdir(state))
    assert left[0] == "j1.json" and len(left) == 3
    assert all(name.startswith(("j2.json.corrupt-", "j3.json.corrupt-")) for name in left[1:])
    assert records.load_running(state) == [good]  # moved aside: not read again
