from pathlib import Path
from typing import Any

import pytest

from joblet.errors import ConfigError
from joblet.persist.archive.config import parse_backend
from joblet.persist.config import load_persist_config, parse_persist_config


def test_local_is_the_default_and_s3_settings_are_read() -> None:
    assert parse_persist_config({}).s3 is None
    config = parse_persist_config(
        {
            "server": {"nodeId": "n1"},
            "persist": {
                "backend": "s3",
                "s3": {
                    "bucket": "joblet-history",
                    "prefix": "/prod/eu/",
                    "endpointUrl": "http://127.0.0.1:9000",
                    "keepLocal": "0s",
                    "maxAge": "90d",
                    "serverSideEncryption": "AES256",
                    "storageClass": "STANDARD_IA",
                },
            },
        }
    )
    assert config.s3 is not None and config.node_id == "n1"
    assert config.s3.prefix == "prod/eu" and config.s3.keep_local_s == 0
    assert config.s3.max_age_s == 90 * 86400 and config.s3.keep_local_s == 0
    assert (config.s3.server_side_encryption, config.s3.storage_class) == ("AES256", "STANDARD_IA")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"backend": "gcs"}, "backend 'gcs' must be one of local, s3"),
        ({"backend": "s3"}, "s3.bucket '' is not a valid bucket name"),
        ({"backend": "s3", "s3": {"bucket": "Bad_Name"}}, "not a valid bucket name"),
        ({"backend": "s3", "s3": {"bucket": "b-1", "prefix": "a/../b"}}, "'..'"),
        (
            {"backend": "s3", "s3": {"bucket": "b-1", "serverSideEncryption": "rot13"}},
            "AES256 or aws:kms",
        ),
        ({"backend": "s3", "s3": {"bucket": "b-1", "accessKeyId": "AK"}}, "go together"),
        ({"backend": "s3", "s3": {"bucket": "b-1", "uploadInterval": "0s"}}, "positive"),
        ({"backend": "s3", "s3": ["bucket"]}, "'s3' must be a mapping"),
    ],
)
def test_bad_settings_are_refused_clearly(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_backend(section)


def test_an_unknown_s3_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("persist:\n  backend: s3\n  s3: {bucket: b-1, keeplocal: 1h}\n")
    with pytest.raises(ConfigError, match=r"persist\.s3\.keeplocal: unknown key.*keepLocal"):
        load_persist_config(path)
