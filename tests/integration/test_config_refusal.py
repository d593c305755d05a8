"""A config file with a typo stops `joblet serve` (and each helper) before
anything starts: non-zero exit, one line per unknown key with its path and
a did-you-mean, no traceback. The config the test daemons run with passes
`joblet config check`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import write_test_config

pytestmark = pytest.mark.integration

TYPO = "joblet.maxConcurentJobs: unknown key (did you mean maxConcurrentJobs?)"
SECTION_TYPO = "netwrok: unknown section (did you mean network?)"


def _joblet(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "joblet.daemon.main", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The config the integration daemons get, with the overrides they use."""
    sections = {
        "joblet": {"stopGracePeriod": "30s", "maxConcurrentJobs": 1},
        "cgroup": {"defaults": {"maxPids": 256}},
        "metrics": {"interval": 1},
        "network": {"dns": ["10.203.0.1"], "bigTcp": "on"},
        "persist": {"segmentSize": "16KB"},
    }
    return write_test_config(tmp_path / "root", 50051, sections)


def _add_typos(config: Path) -> None:
    raw = yaml.safe_load(config.read_text())
    raw["joblet"]["maxConcurentJobs"] = 2
    raw["netwrok"] = {"allowHost": True}
    config.write_text(yaml.safe_dump(raw))


def test_the_test_daemons_config_passes_the_check(config: Path) -> None:
    checked = _joblet("config", "check", str(config))
    assert (checked.returncode, checked.stdout) == (0, f"{config}: ok\n"), checked.stderr


def test_serve_refuses_a_typo_naming_the_key_and_the_fix(config: Path) -> None:
    _add_typos(config)
    served = _joblet("serve", "--config", str(config))
    assert served.returncode == 1
    assert "Traceback" not in served.stderr
    lines = served.stderr.splitlines()
    assert lines[0] == f"joblet: error: config {config} has unknown keys:"
    assert lines[1:] == [f"{config}: {TYPO}", f"{config}: {SECTION_TYPO}"]
    # Nothing was started: no sockets, no launcher, no helper logs.
    run = config.parent.parent / "run"
    assert not run.exists() or not any(run.iterdir())


def test_config_check_prints_the_same_lines(config: Path) -> None:
    _add_typos(config)
    checked = _joblet("config", "check", str(config))
    assert checked.returncode == 1
    assert checked.stdout.splitlines() == [f"{config}: {TYPO}", f"{config}: {SECTION_TYPO}"]


@pytest.mark.parametrize("helper", ["persist", "state"])
def test_the_helpers_refuse_the_same_file_alike(config: Path, helper: str) -> None:
    _add_typos(config)
    ran = _joblet(helper, "--config", str(config))
    assert ran.returncode != 0
    assert "Traceback" not in ran.stderr
    assert f"{config}: {TYPO}" in ran.stderr
    assert f"{config}: {SECTION_TYPO}" in ran.stderr


def test_serve_refuses_a_bad_runtime_value_before_starting(config: Path) -> None:
    raw = yaml.safe_load(config.read_text())
    raw["runtime"] = {"allowedSources": ["ftp://mirror/"]}
    config.write_text(yaml.safe_dump(raw))
    served = _joblet("serve", "--config", str(config))
    assert served.returncode == 1
    assert "Traceback" not in served.stderr
    (line,) = served.stderr.splitlines()
    assert line.startswith("joblet: error: runtime: allowedSources:")
    assert not (config.parent.parent / "run" / "launcher.sock").exists()
