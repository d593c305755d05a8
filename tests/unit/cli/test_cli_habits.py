"""Exit codes for jobs that did not succeed, Ctrl-C decisions, and the
parser's docker habits (aliases, did-you-mean, no abbreviations, help)."""

from __future__ import annotations

import pytest

from joblet.cli.interrupt import Presses
from joblet.cli.job_end import end_line, launch_exit_code, launch_failed
from joblet.cli.job_view import job_exit_code
from joblet.cli.main import build_parser
from joblet.cli.parser import did_you_mean
from joblet.client.errors import CliError
from joblet.errors import InvalidArgument
from joblet.jobs.signals import check_grace, parse_signal


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("launch failed: command not found: nosuch", 127),
        ("launch failed: not executable: /work/x.sh", 126),
        ("launch failed: job setup: [Errno 13] Permission denied", 126),
        ("launch failed: cgroup: no room", 1),
    ],
)
def test_launch_failures_exit_like_a_shell(reason: str, code: int) -> None:
    assert launch_failed("FAILED", reason)
    assert launch_exit_code(reason) == code
    assert job_exit_code("FAILED", -1, reason) == code


def test_a_failure_after_the_launch_keeps_the_job_code() -> None:
    assert not launch_failed("FAILED", "exit code 3")
    assert job_exit_code("FAILED", 3, "exit code 3") == 3
    assert end_line("abc", "FAILED", "out of memory") == "job abc FAILED: out of memory"
    assert end_line("abc", "STOPPED", "") == "job abc STOPPED: stopped"


def test_a_second_ctrl_c_within_the_window_detaches() -> None:
    presses = Presses(window_s=2.0)
    assert presses.press(10.0) is False  # forward SIGINT
    assert presses.press(11.5) is True  # detach
    presses = Presses(window_s=2.0)
    assert presses.press(10.0) is False
    assert presses.press(12.5) is False  # too late: forwarded again
    assert presses.press(13.0) is True


@pytest.mark.parametrize(("text", "signum"), [("", 15), ("INT", 2), ("sigint", 2), ("9", 9)])
def test_signal_names(text: str, signum: int) -> None:
    assert parse_signal(text) == signum


def test_bad_signals_and_grace_periods_are_refused() -> None:
    for bad in ("FOO", "999", "SIG"):
        with pytest.raises(InvalidArgument, match="signal"):
            parse_signal(bad)
    assert check_grace(0) is None and check_grace(5) == 5.0
    with pytest.raises(InvalidArgument, match="grace period"):
        check_grace(-1)


@pytest.mark.parametrize(
    ("argv", "handler"),
    [
        (["ps"], "list_jobs"),
        (["ls"], "list_jobs"),
        (["logs", "x"], "log"),
        (["inspect", "x"], "status"),
        (["rm", "x"], "delete"),
        (["job", "ps"], "list_jobs"),
        (["wait", "a", "b"], "wait"),
        (["kill", "x"], "kill"),
    ],
)
def test_docker_aliases(argv: list[str], handler: str) -> None:
    assert build_parser().parse_args(argv).handler.__name__ == handler


def _usage_error(*argv: str) -> str:
    with pytest.raises(CliError) as caught:
        build_parser().parse_args(list(argv))
    assert caught.value.exit_code == 2
    return caught.value.message


def test_did_you_mean_for_commands_and_flags() -> None:
    assert "did you mean 'list'" in _usage_error("lsit")
    assert "(see 'rnx --help')" in _usage_error("lsit")
    message = _usage_error("job", "stauts", "x")
    assert "'status'" in message and "(see 'rnx job --help')" in message
    message = _usage_error("run", "--nmae", "x", "ls")
    assert "did you mean '--name'" in message and "(see 'rnx run --help')" in message
    message = _usage_error("log", "--tial", "3", "x")
    assert "'--tail'" in message and "(see 'rnx log --help')" in message
    assert did_you_mean("zzz", ["list", "run"]) == ""


def test_abbreviated_flags_are_refused() -> None:
    assert "unrecognized arguments: --max-mem" in _usage_error("run", "--max-mem", "5", "ls")


def test_log_takes_docker_flags() -> None:
    args = build_parser().parse_args(["logs", "-f", "-n", "5", "web"])
    assert (args.follow, args.tail, args.uuid) == (True, 5, "web")


def test_bare_groups_print_their_help(capsys: pytest.CaptureFixture[str]) -> None:
    from joblet.cli.main import main

    assert main([]) == 0
    assert "usage: rnx" in capsys.readouterr().out
    assert main(["job"]) == 0
    assert "usage: rnx job" in capsys.readouterr().out


def test_stop_takes_a_grace_period_and_a_signal() -> None:
    args = build_parser().parse_args(["stop", "-t", "30s", "--signal", "INT", "a", "b"])
    assert (args.time, args.signal, args.uuids) == (30, "INT", ["a", "b"])
    assert build_parser().parse_args(["kill", "a"]).signal == "KILL"


def test_rnx_node_picks_the_node(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    from pathlib import Path

    from joblet.cli.main import main

    assert isinstance(tmp_path, Path)
    config = tmp_path / "rnx.yml"
    config.write_text("version: '3.0'\nnodes:\n  default:\n    address: 'x:1'\n")
    monkeypatch.setenv("RNX_NODE", "staging")
    assert main(["--config", str(config), "list"]) == 2
    assert "node 'staging' is not in" in capsys.readouterr().err
    # --node still wins over the environment
    assert main(["--config", str(config), "--node", "other", "list"]) == 2
    assert "node 'other' is not in" in capsys.readouterr().err


def test_periods_and_intervals_take_durations() -> None:
    args = build_parser().parse_args(["job", "metrics", "x", "--summary", "--period", "10m"])
    assert args.period == 600
    args = build_parser().parse_args(["monitor", "watch", "--interval", "30s"])
    assert args.interval == 30
    assert "must be 1..3600" in _usage_error("monitor", "watch", "--interval", "2h")


def test_version_prints_the_client_even_without_a_server(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    from joblet.cli.main import main
    from joblet.cli.version import client_version

    assert main(["--version", "--config", f"{tmp_path}/none.yml"]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"Client: rnx {client_version()}\nServer: unknown\n"
    assert captured.err.startswith("rnx: error: config file") and captured.err.count("\n") == 1
    assert main(["version", "--config", f"{tmp_path}/none.yml"]) == 1
    assert capsys.readouterr().out.startswith("Client: rnx ")
