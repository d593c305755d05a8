"""`joblet --version` and `joblet version` print the installed package's version."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from joblet.daemon.main import main


def test_version_flag_prints_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"joblet {metadata.version('joblet')}"


def test_version_command_prints_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"joblet {metadata.version('joblet')}"


def test_installed_entry_point_answers_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "joblet.daemon.main", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["joblet", metadata.version("joblet")]
