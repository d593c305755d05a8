"""A client generated from the v1.0.9 contract's RuntimeService tables (not
from our proto, which adds fields) drives all nine RPCs against a real daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import RunningDaemon
from .runtime_sources import write_runtime
from .test_runtimes import daemon  # noqa: F401 (the module's daemon fixture)

HERE = Path(__file__).parent / "v109"


def test_v109_client_drives_all_nine_rpcs(daemon: RunningDaemon, tmp_path: Path) -> None:  # noqa: F811
    generated = tmp_path / "gen"
    generated.mkdir()
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{HERE}", f"--python_out={generated}",
         f"--grpc_python_out={generated}", str(HERE / "runtime.proto")],
        check=True, capture_output=True,
    )  # fmt: skip
    node = yaml.safe_load(daemon.rnx_config.read_text())["nodes"]["default"]
    for part in ("ca", "cert", "key"):
        (tmp_path / part).write_text(node[part])
    source = write_runtime(tmp_path / "src", "v109")
    done = subprocess.run(
        [sys.executable, str(HERE / "drive_runtimes.py"), str(generated),
         f"127.0.0.1:{daemon.port}", *(str(tmp_path / p) for p in ("ca", "cert", "key")),
         str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["install"] == ["installed", "v109", True]
    assert out["stream"][0] == "progress" and out["stream"][-1] == "result"
    assert "log" in out["stream"]
    assert out["steps"] == [1, 2, 3, 4, 5, 6]
    assert out["result"] is True
    assert ["v109", True, True, ["hello==1", "world==2"]] in out["list"]
    assert out["info"] == [True, "sh", ["amd64", "arm64"]]
    assert out["test"][:2] == [True, 0]
    assert "hello from v1" in out["test"][2]
    assert out["validate"] == [True, "python-3.11-ml", ["ml"]]
    assert out["github"] == "PERMISSION_DENIED"
    assert out["github_stream"] == "PERMISSION_DENIED"
    assert out["remove"] == [True, True]
