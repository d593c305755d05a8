"""scripts/gpu-check on a host without an NVIDIA GPU: its facts part runs,
says so cleanly, and every GPU step is reported not testable, never passed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "gpu-check"


def test_gpu_check_says_no_nvidia_gpu_and_tests_nothing(tmp_path: Path) -> None:
    if Path("/proc/driver/nvidia/version").exists():
        pytest.skip("this host has an NVIDIA driver: run scripts/gpu-check itself")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "no NVIDIA GPU" in done.stdout
    record = json.loads((tmp_path / "gpu-check.json").read_text())
    facts = record["facts"]
    assert facts["kernel"] and facts["cgroupMounts"] and facts["gpus"] == []
    steps = record["steps"]
    assert set(steps) == {"smi", "cuda", "no-gpu", "queue", "table"}
    assert all(s["result"] == "not testable here" for s in steps.values()), steps
    assert "no NVIDIA GPU" in (tmp_path / "gpu-check.txt").read_text()
