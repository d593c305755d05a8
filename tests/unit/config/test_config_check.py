"""`joblet config check FILE`: the problems the daemon and its helpers would
refuse, or "FILE: ok", without starting anything; and the configs that
`joblet setup`, the test fixtures and the benchmarks write pass it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from joblet.config.check import check_config_file
from joblet.setup.command import run_setup


def _setup(tmp_path: Path) -> Path:
    run_setup(tmp_path / "root", "127.0.0.1", 50051, [], False)
    return tmp_path / "root" / "config" / "joblet-config.yml"


def _edit(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    raw = yaml.safe_load(path.read_text())
    for name, values in sections.items():
        section = raw.setdefault(name, {})
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(section.get(key), dict):
                section[key].update(value)
            else:
                section[key] = value
    path.write_text(yaml.safe_dump(raw))
    return path


def _joblet(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "joblet.daemon.main", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_the_config_setup_writes_passes(tmp_path: Path) -> None:
    assert check_config_file(_setup(tmp_path)) == []


def test_the_settings_tests_and_benchmarks_write_pass(tmp_path: Path) -> None:
    # What the integration fixtures and bench/ put over `joblet setup`'s file.
    path = _edit(
        _setup(tmp_path),
        {
            "joblet": {"stopGracePeriod": "1s", "maxConcurrentJobs": 3, "jobTimeout": "1s"},
            "cgroup": {"parent": "joblet-test-1", "defaults": {"maxPids": 64}},
            "network": {
                "bridgeCidr": "10.201.0.0/24",
                "isolatedPool": "10.202.0.0/24",
                "dns": ["10.203.0.1"],
                "bigTcp": "on",
            },
            "metrics": {"interval": 1},
            "persist": {"segmentSize": "16KB"},
            "state": {"backend": "sqlite", "sqlite": {"path": str(tmp_path / "b.db")}},
        },
    )
    assert check_config_file(path) == []


def test_unknown_keys_are_all_reported_before_any_value(tmp_path: Path) -> None:
    path = _edit(
        _setup(tmp_path),
        {"joblet": {"maxConcurentJobs": 2, "stopGracePeriod": "soon"}, "cgroup": {"parnet": "x"}},
    )
    assert check_config_file(path) == [  # in the file's order (safe_dump sorts)
        f"{path}: cgroup.parnet: unknown key (did you mean parent?)",
        f"{path}: joblet.maxConcurentJobs: unknown key (did you mean maxConcurrentJobs?)",
    ]


def test_each_reader_reports_its_bad_value(tmp_path: Path) -> None:
    path = _edit(
        _setup(tmp_path),
        {"joblet": {"maxConcurrentJobs": -1}, "state": {"backend": "mongo"}},
    )
    assert check_config_file(path) == [
        f"{path}: joblet.maxConcurrentJobs must be >= 0",
        f"{path}: state: backend 'mongo' is not one of sqlite, memory, redis, dynamodb",
    ]


def test_a_file_that_is_not_yaml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("joblet: [\n")
    (line,) = check_config_file(path)
    assert line.startswith(f"config {path} is not valid YAML")
    path.write_bytes(b"joblet:\n  root: \xff\n")
    assert check_config_file(path) == [f"config {path} is not UTF-8 text: invalid start byte"]
    assert check_config_file(tmp_path) == [f"cannot read config {tmp_path}: Is a directory"]


def test_the_command_prints_ok_or_the_problems(tmp_path: Path) -> None:
    path = _setup(tmp_path)
    ok = _joblet("config", "check", str(path))
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, f"{path}: ok\n", "")
    _edit(path, {"joblet": {"maxConcurentJobs": 2}, "netwrok": {}})
    bad = _joblet("config", "check", str(path))
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        f"{path}: joblet.maxConcurentJobs: unknown key (did you mean maxConcurrentJobs?)",
        f"{path}: netwrok: unknown section (did you mean network?)",
    ]
    missing = _joblet("config", "check", str(tmp_path / "none.yml"))
    assert missing.returncode == 1
    assert "No such file or directory" in missing.stdout
    assert "Traceback" not in bad.stderr + missing.stderr


def test_the_runtime_section_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "joblet-config.yml"
    path.write_text(
        "security: {serverCert: c, serverKey: k, caCert: a}\n"
        "runtime: {maxSize: lots, allowedSources: [ftp://x/]}\n"
    )
    (problem,) = check_config_file(path)
    assert problem.startswith(f"{path}: runtime: ")
    path.write_text("security: {serverCert: c, serverKey: k, caCert: a}\nruntime: [1]\n")
    assert check_config_file(path) == [f"{path}: runtime: must be a mapping"]
