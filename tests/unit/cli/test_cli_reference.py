"""docs/cli.md, the man pages and the `--help` examples, checked against the parser."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from joblet.cli.commands import JOB_ACTIONS, TOP_LEVEL
from joblet.cli.examples import EXAMPLES
from joblet.cli.main import build_parser, main
from joblet.cli.reference import man_pages, markdown, write_man_pages
from joblet.cli.tree import command_tree

REPO = Path(__file__).resolve().parents[3]
CLI_MD = REPO / "docs" / "cli.md"
REGENERATE = "python -m joblet.cli.reference > docs/cli.md"


def test_docs_cli_md_matches_the_parser() -> None:
    assert CLI_MD.read_text() == markdown(command_tree()), (
        f"docs/cli.md is out of date with rnx's parser; run `{REGENERATE}`"
    )


def test_reference_has_every_command_flag_and_help() -> None:
    tree = command_tree()
    text = markdown(tree)
    for cmd in tree.walk():
        if cmd.name.startswith("__"):
            assert f"`{cmd.full_name}`" not in text
            continue
        assert f"`{cmd.full_name}`" in text
        for flag in cmd.flags:
            assert flag.help in text.replace("\\|", "|"), (cmd.full_name, flag.names)
    for name, help_text in {**TOP_LEVEL, **JOB_ACTIONS}.items():
        assert f"| `{name}` | {help_text} |" in text


def test_reference_follows_a_changed_parser() -> None:
    """The drift check is not vacuous: a new flag changes the output."""
    before = markdown(command_tree())
    parser = build_parser()
    parser.add_argument("--brand-new", action="store_true", help="a flag no doc mentions")
    after = markdown(command_tree(parser))
    assert after != before and "`--brand-new`" in after


def test_module_prints_the_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    from joblet.cli.reference import main as reference_main

    assert reference_main([]) == 0
    assert capsys.readouterr().out == CLI_MD.read_text()


def test_man_pages_one_per_group(tmp_path: Path) -> None:
    written = write_man_pages(command_tree(), tmp_path)
    names = sorted(p.name for p in written)
    assert "rnx.1" in names and "rnx-job.1" in names and "rnx-network.1" in names
    assert "rnx-version.1" not in names  # no subcommands: described in rnx.1
    for path in written:
        first = path.read_text().splitlines()[0]
        assert first.startswith(f".TH {path.stem.upper()} 1 "), first


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_pages_render_without_warnings(tmp_path: Path) -> None:
    for path in write_man_pages(command_tree(), tmp_path):
        done = subprocess.run(
            ["groff", "-man", "-Tutf8", "-ww", "-Wbreak", "-z", str(path)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (done.returncode, done.stderr) == (0, ""), path.name


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_renders_the_job_page(tmp_path: Path) -> None:
    (page,) = [p for p in write_man_pages(command_tree(), tmp_path) if p.name == "rnx-job.1"]
    done = subprocess.run(
        ["man", "-l", str(page)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"MANWIDTH": "100", "MANPAGER": "cat", "PAGER": "cat", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "rnx job run" in done.stdout and "--max-memory" in done.stdout


def test_roff_escapes_what_would_be_requests() -> None:
    pages = man_pages(command_tree())
    for text in pages.values():
        for line in text.splitlines():
            # Only our own requests start a line with a dot; text is escaped.
            assert not line.startswith(".") or line.split()[0] in {
                ".TH",
                ".SH",
                ".SS",
                ".B",
                ".I",
                ".TP",
                ".PP",
                ".nf",
                ".fi",
            }, line


# --- examples in --help ----------------------------------------------------


@pytest.mark.parametrize("command", ["run", "list", "log"])
def test_help_shows_examples_as_written(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([command, "--help"], ["job", command, "--help"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        # Raw formatting: every example line kept whole, alignment and all.
        assert out.rstrip().endswith(EXAMPLES[command].rstrip()), argv


@pytest.mark.parametrize("command", ["run", "list", "log"])
def test_examples_parse(command: str) -> None:
    """Each example is a command line rnx accepts."""
    lines = [line.strip() for line in EXAMPLES[command].splitlines()[1:]]
    assert len(lines) >= 3
    for line in lines:
        words = shlex.split(line.split(" # ")[0].split(" > ")[0].split(" | ")[0])
        assert words[0] == "rnx", line
        argv = ["4f2a" if w == "JOB" else w for w in words[1:]]
        args = build_parser().parse_args(argv)
        assert callable(args.handler), line


def test_other_commands_have_no_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--help"]) == 0
    assert "examples:" not in capsys.readouterr().out
