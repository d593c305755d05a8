from pathlib import Path

import pytest

from joblet.errors import ConfigError
from joblet.persist.config import load_persist_config, parse_persist_config


def test_defaults_derive_from_root() -> None:
    config = parse_persist_config({"joblet": {"root": "/r"}})
    assert config.ipc_socket == Path("/r/run/persist-ipc.sock")
    assert config.grpc_socket == Path("/r/run/persist-grpc.sock")
    assert config.logs_dir == Path("/r/logs")
    assert config.retention.max_age_s == 7 * 86400
    assert config.retention.max_total_bytes == 10 * 1000**3
    assert config.listen is None


def test_section_values() -> None:
    config = parse_persist_config(
        {
            "joblet": {"root": "/r"},
            "security": {"serverCert": "C", "serverKey": "K", "caCert": "A"},
            "persist": {
                "segmentSize": "1MiB",
                "segmentTime": "5s",
                "metricsSegmentTime": "2m",
                "compressionLevel": 6,
                "clientBuffer": "8MB",
                "retention": {"maxAge": "1d", "maxTotalSize": "1GB", "sweepInterval": "1m"},
                "listen": "0.0.0.0:50052",
            },
        }
    )
    assert config.segment_bytes == 1 << 20
    assert config.segment_time_s == 5
    assert config.metrics_segment_time_s == 120
    assert config.client_buffer_bytes == 8_000_000
    assert config.retention.sweep_interval_s == 60
    assert config.listen is not None and config.listen.server_key == "K"


@pytest.mark.parametrize(
    "persist",
    [
        {"compressionLevel": 30},
        {"segmentSize": "10B"},
        {"segmentTime": "0s"},
        {"metricsSegmentTime": "0s"},
        {"retention": {"maxAge": "soon"}},
        {"listen": "nohost"},
        {"listen": "0.0.0.0:50052"},  # no security PEMs
    ],
)
def test_invalid_values_fail_with_config_error(tmp_path: Path, persist: dict[str, object]) -> None:
    path = tmp_path / "c.yml"
    import yaml

    path.write_text(yaml.safe_dump({"joblet": {"root": str(tmp_path)}, "persist": persist}))
    with pytest.raises(ConfigError, match="persist"):
        load_persist_config(path)
