"""The `volumes:` config section."""

from __future__ import annotations

from pathlib import Path

import pytest

from joblet.errors import ConfigError
from joblet.volumes.config import VolumesConfig, load_volumes_config, parse_volumes_config


def test_defaults() -> None:
    assert parse_volumes_config(None) == VolumesConfig(max_size_bytes=100 * 1000**3, max_count=0)


def test_values_are_parsed() -> None:
    config = parse_volumes_config({"maxSize": "2GiB", "maxCount": 5})
    assert config == VolumesConfig(max_size_bytes=2 * 1024**3, max_count=5)


@pytest.mark.parametrize(
    "section",
    [{"maxSize": "big"}, {"maxSize": 0}, {"maxSize": True}, {"maxCount": -1},
     {"maxCount": "3"}, {"maxsize": "1GB"}],
)  # fmt: skip
def test_bad_values_are_refused(section: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="volumes"):
        parse_volumes_config(section)


def test_loaded_from_the_daemon_yaml(tmp_path: Path) -> None:
    path = tmp_path / "joblet-config.yml"
    path.write_text("server: {port: 1}\nvolumes:\n  maxSize: 1GB\n")
    assert load_volumes_config(path).max_size_bytes == 1000**3
    path.write_text("server: {port: 1}\n")
    assert load_volumes_config(path) == VolumesConfig()
    path.write_text("volumes: [1]\n")
    with pytest.raises(ConfigError):
        load_volumes_config(path)
