from pathlib import Path

import pytest

from joblet.errors import ConfigError
from joblet.state.config import (
    DynamoConfig,
    RedisConfig,
    RedisTlsConfig,
    StateConfig,
    load_state_config,
    parse_state_config,
)


def test_defaults_are_sqlite_under_the_root() -> None:
    config = parse_state_config({"joblet": {"root": "/srv/j"}})
    assert config == StateConfig.for_root(Path("/srv/j"))
    assert config.backend == "sqlite"
    assert config.socket == Path("/srv/j/run/state-ipc.sock")
    assert config.sqlite.path == Path("/srv/j/state/jobs.db")
    assert config.write_timeout_s == 5.0


def test_every_key_is_read() -> None:
    raw = {
        "joblet": {"root": "/r"},
        "state": {
            "backend": "redis",
            "socket": "/tmp/s.sock",
            "writeTimeout": "250ms",
            "writeRetries": 5,
            "bufferSize": 42,
            "sqlite": {"path": "/data/j.db"},
            "redis": {
                "host": "redis.local",
                "port": 6380,
                "db": 2,
                "password": "pw",
                "keyPrefix": "node1:",
                "tls": {"caFile": "/ca.pem", "verify": False},
            },
            "dynamodb": {
                "region": "eu-west-1",
                "table": "t",
                "endpoint": "http://127.0.0.1:1",
                "ttlDays": 30,
                "createTable": True,
            },
        },
    }
    config = parse_state_config(raw)
    assert config.backend == "redis"
    assert config.socket == Path("/tmp/s.sock")
    assert config.write_timeout_s == 0.25
    assert (config.write_retries, config.buffer_size) == (5, 42)
    assert config.sqlite.path == Path("/data/j.db")
    assert config.redis == RedisConfig(
        host="redis.local",
        port=6380,
        db=2,
        password="pw",
        key_prefix="node1:",
        tls=RedisTlsConfig(enabled=True, ca_file="/ca.pem", verify=False),
    )
    assert config.dynamodb == DynamoConfig(
        region="eu-west-1", table="t", endpoint="http://127.0.0.1:1", ttl_days=30, create_table=True
    )


def test_tls_true_enables_verified_tls() -> None:
    config = parse_state_config({"state": {"redis": {"tls": True}}})
    assert config.redis.tls == RedisTlsConfig(enabled=True)


@pytest.mark.parametrize(
    "state",
    [
        {"backend": "etcd"},
        {"writeTimeout": "0s"},
        {"bufferSize": 0},
        {"redis": {"port": 70000}},
        {"dynamodb": {"ttlDays": -1}},
        {"redis": "localhost"},
    ],
)
def test_bad_values_are_config_errors(tmp_path: Path, state: dict[str, object]) -> None:
    import yaml

    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump({"state": state}))
    with pytest.raises(ConfigError, match="state"):
        load_state_config(path)


def test_unreadable_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_state_config(tmp_path / "absent.yml")
