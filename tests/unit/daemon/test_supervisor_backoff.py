from __future__ import annotations

from joblet.daemon.supervisor import backoff_delays


def test_backoff_doubles_up_to_cap() -> None:
    assert backoff_delays(0.5, 4.0) == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delays(0.2, 10.0)[-1] == 10.0


def test_a_helpers_pid_is_known_by_its_command_line() -> None:
    from joblet.daemon.supervisor import is_helper_cmdline

    python = b"/usr/bin/python3"
    assert is_helper_cmdline([python, b"-m", b"joblet.daemon.main", b"state"], "state")
    assert not is_helper_cmdline([python, b"-m", b"joblet.daemon.main", b"persist"], "state")
    # `joblet ui` execs its serving process under the same pid
    served = [python, b"-m", b"joblet.ui.runtime", b"--handoff-fd", b"3"]
    assert is_helper_cmdline(served, "ui")
    assert not is_helper_cmdline(served, "state")
    assert not is_helper_cmdline([b"sleep", b"ui"], "ui")
