"""The SDK against a real daemon: docs/sdk.md's examples run as doctests,
and what they do not show (bytes logs of a live job, errors per code)."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from .conftest import RunningDaemon

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def test_sdk_doc_examples_run(daemon: RunningDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNX_CONFIG", str(daemon.rnx_config))
    monkeypatch.delenv("RNX_CONFIG_PATH", raising=False)
    result = doctest.testfile(
        str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.attempted > 20
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_large_local_files_stream(
    daemon: RunningDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import os

    from joblet import Client

    monkeypatch.setenv("RNX_CONFIG", str(daemon.rnx_config))
    data = os.urandom(1 << 20) * 20  # over the 16 MiB streaming threshold
    (tmp_path / "big.bin").write_bytes(data)
    audit = daemon.root / "logs" / "audit.log"
    streams_before = audit.read_text().count("UploadFiles") if audit.exists() else 0
    with Client() as client:
        job = client.run(
            "sha256sum", ["big.bin", "small.txt"],
            uploads={"big.bin": tmp_path / "big.bin", "small.txt": b"inline"},
        )  # fmt: skip
        assert job.wait(timeout=60).exit_code == 0
        sums = dict(reversed(line.split()) for line in job.output().splitlines())
    assert sums["big.bin"] == hashlib.sha256(data).hexdigest()
    assert sums["small.txt"] == hashlib.sha256(b"inline").hexdigest()
    assert audit.read_text().count("UploadFiles") > streams_before  # it went by UploadFiles
