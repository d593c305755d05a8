from __future__ import annotations

import pytest

from joblet.errors import ConfigError
from joblet.runtimes.config import BuildDefaults, RuntimeConfig, parse_runtime_config


def test_defaults() -> None:
    config = parse_runtime_config(None)
    assert config == RuntimeConfig()
    assert config.allowed_sources == ("https://github.com/", "https://codeload.github.com/")
    assert config.build == BuildDefaults()


def test_values_read() -> None:
    config = parse_runtime_config(
        {
            "maxSize": "2GiB",
            "allowedSources": ["http://127.0.0.1:8080/ok/"],
            "githubBaseUrl": "http://127.0.0.1:8080/ok/",
            "testTimeout": "45s",
            "build": {"timeout": "5m", "maxMemory": 512, "maxCpu": 150, "networks": ["lab"]},
        }
    )
    assert config.max_size_bytes == 2 * 1024**3
    assert config.github_base_url == "http://127.0.0.1:8080/ok"
    assert config.test_timeout_s == 45.0
    assert config.build == BuildDefaults(300.0, 512, 150, 1 << 30, ("lab",))


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"maxsize": "1GB"}, "did you mean maxSize"),
        ({"maxSize": "0"}, "above 0"),
        ({"maxSize": "lots"}, "runtime:"),
        ({"allowedSources": "https://github.com/"}, "list of URL prefixes"),
        ({"allowedSources": ["ftp://x/"]}, "only http:// and https://"),
        ({"githubBaseUrl": "github.com"}, "http(s) URL"),
        ({"testTimeout": "soon"}, "invalid duration"),
        ({"build": {"maxMemory": -1}}, "build.maxMemory"),
        ({"build": {"networks": "lab"}}, "build.networks"),
        ({"build": {"timeot": "5m"}}, "did you mean timeout"),
    ],
)
def test_bad_values_are_refused(section: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_runtime_config(section)
    assert fragment in str(refused.value)
