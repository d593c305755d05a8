"""`joblet ui token` and `joblet ui` without the ui extra: one line, an exit code."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from joblet.daemon.main import main
from joblet.setup.command import run_setup
from joblet.ui.config import login_key_path
from joblet.ui.tokens import read_token


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ui-root")
    return run_setup(root, "127.0.0.1", 50123, [], force=False).files.daemon_config


def test_token_prints_a_one_time_token_alone(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ui", "token", "--config", str(config), "--role", "viewer", "--ttl", "8h"]) == 0
    token = capsys.readouterr().out.strip()
    key = bytes.fromhex(login_key_path(config.parent.parent).read_text())
    grant = read_token(key, token, time.time())
    assert grant.role == "viewer" and 8 * 3600 - 60 < grant.expires_at - time.time() <= 8 * 3600


def test_a_bad_ttl_is_a_usage_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ui", "token", "--config", str(config), "--role", "admin", "--ttl", "soon"]) == 2
    assert capsys.readouterr().err.startswith("joblet: error: --ttl:")


def test_without_the_ui_extra_it_says_what_to_install(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "joblet.ui.serve", raising=False)
    monkeypatch.delitem(sys.modules, "joblet.ui.app", raising=False)
    assert main(["ui", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err == (
        "joblet: error: the web UI needs the ui extra (aiohttp is missing): "
        "pip install 'joblet[ui]'\n"
    )
