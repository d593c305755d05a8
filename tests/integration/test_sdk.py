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
