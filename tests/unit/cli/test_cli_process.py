"""rnx as a real process: one-line errors without grpc's own logging, lazy imports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from conftest import write_config


def _rnx(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RNX_CONFIG", "GRPC_VERBOSITY")}
    return subprocess.run(
        [sys.executable, "-m", "joblet.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_unreachable_daemon_gives_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # ./rnx-config.yml is found without --config; its certificate is valid, so
    # what is reported is the refused TCP connection.
    write_config(tmp_path / "rnx-config.yml", f"127.0.0.1:{port}")
    done = _rnx("job", "list", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"rnx: error: cannot reach joblet at 127.0.0.1:{port}: connection refused"
        " (is the daemon running?)"
    ]


def test_help_and_usage_errors(tmp_path: Path) -> None:
    assert _rnx("--help", cwd=tmp_path).returncode == 0
    done = _rnx("job", "status", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("rnx: error: the following arguments are required: JOB")
    assert done.stderr.count("\n") == 1


def test_startup_does_not_import_grpc_protobuf_or_yaml() -> None:
    code = (
        "import sys, joblet.cli.main as m; m.build_parser(); "
        "print(sorted(n for n in ('grpc', 'google.protobuf', 'yaml') if n in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == "[]"


def test_job_list_runs_neither_grpc_aio_nor_asyncio_nor_pyyaml(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = write_config(tmp_path / "rnx-config.yml", f"127.0.0.1:{port}")
    code = (
        "import sys; from joblet.cli.main import main; from joblet.deferred import is_deferred; "
        f"code = main(['--config', {str(config)!r}, 'job', 'list']); "
        "print(code, is_deferred('asyncio'), is_deferred('grpc.aio'), "
        "'joblet.api.joblet_pb2_grpc' in sys.modules, 'joblet.cli.volume' in sys.modules, "
        "'yaml' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.split() == ["1", "True", "True", "False", "False", "False"]
