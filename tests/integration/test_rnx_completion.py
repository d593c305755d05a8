"""Job-id completion in a real bash, answered by a real daemon over mutual TLS."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.cli.completion import bash_script
from joblet.cli.tree import command_tree

from .conftest import ROOT_NEEDED, RunningDaemon, start_daemon

UUID_LINE = re.compile(rb"^ID: ([0-9a-f-]{36})$", re.MULTILINE)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    running = start_daemon(tmp_path_factory.mktemp("completion"))
    yield running
    running.stop()


def _complete(tmp_path: Path, *words: str) -> list[str]:
    bash = shutil.which("bash")
    assert bash is not None
    rnx = tmp_path / "rnx"  # the real rnx of this checkout, on PATH as completion expects
    rnx.write_text(f'#!/bin/sh\nexec {sys.executable} -m joblet.cli.main "$@"\n')
    rnx.chmod(0o755)
    script = tmp_path / "rnx.bash"
    script.write_text(bash_script(command_tree()))
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n_rnx\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(
        [bash, "--norc", "--noprofile", "-c", program],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert (done.returncode, done.stderr) == (0, "")
    return [w for w in done.stdout.splitlines() if w]


def test_bash_completes_the_daemons_job_ids_and_names(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    res = daemon.rnx("run", "--name", "nightly-report", "true")
    assert res.returncode == 0, res.stderr
    match = UUID_LINE.search(res.stdout)
    assert match, res.stdout
    job_id = match.group(1).decode()
    config = str(daemon.rnx_config)
    offered = _complete(tmp_path, "rnx", "--config", config, "status", "")
    assert job_id in offered and "nightly-report" in offered
    assert _complete(tmp_path, "rnx", "--config", config, "job", "log", job_id[:6]) == [job_id]
    assert _complete(tmp_path, "rnx", "--config", config, "wait", "nightly") == ["nightly-report"]
