"""rnx against a real daemon, with a job whose arguments and output carry
terminal commands (ESC, BEL, OSC 52 clipboard, a window title)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
import tty

import pytest
from integration.conftest import RunningDaemon, wait_status

from joblet.api import joblet_pb2 as pb

pytestmark = pytest.mark.integration

OSC52 = "\x1b]52;c;aGk=\x07"
TITLE = "\x1b]0;pwned\x07"
RED = "\x1b[31mred\x1b[0m"
# What the job writes: colours, a clipboard write, a title, a C1 CSI (UTF-8).
OUTPUT = f"{RED} {OSC52}{TITLE}\u009b2J end\n".encode()
RAW_CONTROLS = (b"\x1b]", b"\x07", "\u009b".encode())


def _run_job(daemon: RunningDaemon) -> str:
    script = f"import sys; sys.stdout.buffer.write({OUTPUT!r})"
    request = pb.RunJobRequest(command="python3", args=["-c", script, OSC52, TITLE, "\x1b[2J"])
    stub = daemon.jobs()
    job_id = stub.RunJob(request).jobUuid
    wait_status(stub, job_id, {"COMPLETED"})
    return str(job_id)


def _rnx_on_pty(daemon: RunningDaemon, *args: str) -> bytes:
    """rnx with a terminal as its stdout; what the terminal received."""
    master, slave = pty.openpty()
    tty.setraw(slave)  # no newline translation: compare bytes as written
    cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config), *args]
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(cmd, stdout=slave, stderr=devnull)
    os.close(slave)
    received = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: rnx exited and closed the terminal
            break
        if not data:
            break
        received += data
    os.close(master)
    assert proc.wait(timeout=30) == 0, received
    return received


def test_list_and_status_show_controls_escaped(daemon: RunningDaemon) -> None:
    job_id = _run_job(daemon)
    for args in (("list", "--no-trunc"), ("status", job_id)):
        res = daemon.rnx(*args)
        assert res.returncode == 0, res.stderr
        assert job_id.encode() in res.stdout
        assert not any(raw in res.stdout for raw in (b"\x1b", b"\x07")), res.stdout
        assert b"\\x1b]52;c;aGk=\\x07" in res.stdout


def test_log_to_a_terminal_keeps_colours_only(daemon: RunningDaemon) -> None:
    job_id = _run_job(daemon)
    shown = _rnx_on_pty(daemon, "log", job_id)
    assert RED.encode() in shown
    assert not any(raw in shown for raw in RAW_CONTROLS), shown
    assert b"\\x1b]52;c;aGk=\\x07\\x1b]0;pwned\\x07\\u009b2J end" in shown
    assert _rnx_on_pty(daemon, "log", "--raw", job_id) == OUTPUT


def test_log_to_a_pipe_is_byte_exact(daemon: RunningDaemon) -> None:
    job_id = _run_job(daemon)
    res = daemon.rnx("log", job_id)
    assert (res.returncode, res.stdout) == (0, OUTPUT)
