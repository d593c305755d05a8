"""Argument parsing: job remainder, repeated flags, K=V errors, shortcuts."""

from __future__ import annotations

import argparse

import pytest

from joblet.cli.commands import SHORTCUTS
from joblet.cli.job_args import build_run_request, key_value, split_command_line
from joblet.cli.main import build_parser
from joblet.client.errors import CliError
from joblet.client.uploads import UploadEntry


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


@pytest.mark.parametrize(
    ("argv", "command_line"),
    [
        (["python3", "-c", "print(1)"], ["python3", "-c", "print(1)"]),
        (["ls", "-la"], ["ls", "-la"]),
        (["echo", "--name", "x", "-f"], ["echo", "--name", "x", "-f"]),
        (["git", "log", "--", "file"], ["git", "log", "--", "file"]),
        (["echo", "--", "-n"], ["echo", "--", "-n"]),
        (["--", "ls", "-l"], ["ls", "-l"]),
    ],
)
def test_everything_after_cmd_belongs_to_the_job(argv: list[str], command_line: list[str]) -> None:
    args = parse("run", *argv)
    command, rest = split_command_line(args.command_line)
    assert [command, *rest] == command_line
    assert args.name == "" and args.follow is False


def test_flags_before_cmd_are_rnx_flags() -> None:
    args = parse("job", "run", "-f", "--name", "n", "--max-memory", "64", "sleep", "1")
    assert (args.follow, args.name, args.max_memory, args.command_line) == (
        True,
        "n",
        64,
        ["sleep", "1"],
    )


def test_repeated_flags_accumulate() -> None:
    args = parse(
        "run",
        "-e",
        "A=1",
        "--env",
        "B=",
        "-s",
        "S=x=y",
        "--volume",
        "a",
        "--volume",
        "b",
        "--upload",
        "f1",
        "--upload",
        "f2",
        "--upload-dir",
        "d",
        "true",
    )
    assert args.env == [("A", "1"), ("B", "")]
    assert args.secret_env == [("S", "x=y")]
    assert args.volume == ["a", "b"]
    assert (args.upload, args.upload_dir) == (["f1", "f2"], ["d"])


def test_later_value_of_a_repeated_env_key_wins() -> None:
    request = build_run_request(parse("run", "-e", "A=1", "-e", "A=2", "true"), [], {})
    assert dict(request.environment) == {"A": "2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("=v", "invalid variable name ''"),
        ("1A=v", "invalid variable name '1A'"),
        ("A-B=v", "invalid variable name 'A-B'"),
    ],
)
def test_key_value_errors(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        key_value(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "-e", "oops-", "ls"],
        ["run", "--max-cpu", "x", "ls"],
        ["run", "--max-memory", "-1", "ls"],
        ["run", "--gpu", str(2**31), "ls"],
        ["status"],
        ["frobnicate"],
        ["list", "--bogus"],
    ],
)
def test_usage_errors_raise_cli_error_with_exit_code_2(argv: list[str]) -> None:
    with pytest.raises(CliError) as caught:
        parse(*argv)
    assert caught.value.exit_code == 2
    assert "--help" in caught.value.message


def test_missing_cmd_is_a_usage_error() -> None:
    with pytest.raises(CliError) as caught:
        split_command_line(parse("run", "--name", "x").command_line)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("name", SHORTCUTS)
def test_shortcuts_use_the_same_handlers(name: str) -> None:
    extra = ["true"] if name == "run" else [] if name == "list" else ["abc"]
    assert parse(name, *extra).handler is parse("job", name, *extra).handler


def test_global_options_before_and_after_the_command() -> None:
    before = parse("--config", "c.yml", "--node", "n", "--json", "job", "list")
    assert (before.config, before.node, before.json) == ("c.yml", "n", True)
    after = parse("job", "status", "abc", "--json", "--node", "m")
    assert (after.config, after.node, after.json) == (None, "m", True)
    # a value given before the command is kept when not repeated after it
    assert parse("--json", "--node", "n", "list").node == "n"
    assert parse("list").json is False


def test_run_request_maps_uploads() -> None:
    uploads = [UploadEntry("d", b"", 0o755, True), UploadEntry("d/f", b"x", 0o644)]
    request = build_run_request(parse("run", "cat", "d/f"), uploads, {})
    assert [(u.path, u.content, u.mode, u.isDirectory) for u in request.uploads] == [
        ("d", b"", 0o755, True),
        ("d/f", b"x", 0o644, False),
    ]
