"""The ui: section: defaults, a non-loopback listen without TLS refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from joblet.errors import ConfigError
from joblet.ui.config import listen_problem, parse_ui_config

ROOT = Path("/opt/joblet")


def test_defaults_listen_on_loopback_5175() -> None:
    config = parse_ui_config(None, ROOT)
    assert (config.enabled, config.host, config.port, config.tls) == (
        False,
        "127.0.0.1",
        5175,
        False,
    )
    assert config.url() == "http://127.0.0.1:5175"
    assert config.clients == ROOT / "config" / "ui-clients.yml"
    assert listen_problem(config) is None


@pytest.mark.parametrize("listen", ["0.0.0.0:5175", "10.1.2.3:8080", "[::]:5175", "jobs.example:1"])
def test_non_loopback_without_tls_is_refused(listen: str) -> None:
    problem = listen_problem(parse_ui_config({"listen": listen}, ROOT))
    assert problem is not None and "ui.tls" in problem
    assert listen_problem(parse_ui_config({"listen": listen, "tls": True}, ROOT)) is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"listen": "5175"}, "HOST:PORT"),
        ({"listen": "127.0.0.1:99999"}, "1-65535"),
        ({"enabled": "yes"}, "true or false"),
        ({"hosts": "a"}, "list"),
        ({"port": 1}, "unknown"),
        ({"nodes": ["east"]}, "map node names"),
        ({"nodes": {"local": "/x"}}, "is not a node name"),
        ({"nodes": {"a b": "/x"}}, "is not a node name"),
        ({"nodes": {"east": ""}}, "ui-clients.yml"),
        ({"maxUploadBytes": 0}, "positive whole number"),
        ({"maxUploadBytes": "1MB"}, "positive whole number"),
    ],
)
def test_bad_values_are_refused(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_ui_config(section, ROOT)


def test_more_nodes_keep_their_order_and_the_upload_cap_is_read() -> None:
    config = parse_ui_config(
        {"nodes": {"east": "/etc/east.yml", "west": "/etc/west.yml"}, "maxUploadBytes": 1024},
        ROOT,
    )
    assert config.nodes == (("east", Path("/etc/east.yml")), ("west", Path("/etc/west.yml")))
    assert config.max_upload_bytes == 1024
    assert parse_ui_config(None, ROOT).max_upload_bytes == 32 * 1024 * 1024
