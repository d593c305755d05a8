"""What `joblet ui` hands to its serving process across exec(2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from joblet.errors import ConfigError
from joblet.ui.config import UiConfig
from joblet.ui.handoff import DaemonFacts, Handoff, decode, encode, read_handoff


def sample() -> Handoff:
    ui = UiConfig(enabled=True, host="10.0.0.5", port=6000, tls=True, hosts=("ui.example",),
                  user="joblet-ui", clients=Path("/etc/joblet/ui-clients.yml"),
                  public_url="https://ui.example:6000",
                  nodes=(("east", Path("/etc/east.yml")),), max_upload_bytes=1024)  # fmt: skip
    facts = DaemonFacts(Path("/opt/joblet"), Path("/opt/joblet/ca/crl.pem"),
                        "CERT", "KEY", "CA")  # fmt: skip
    return Handoff(ui, facts, listen="127.0.0.1:7000", clients=Path("/tmp/c.yml"),
                   exit_with_parent=True, log_level="DEBUG")  # fmt: skip


def test_every_field_survives_the_trip() -> None:
    assert decode(encode(sample())) == sample()
    bare = Handoff(UiConfig(), DaemonFacts(Path("/r"), Path("/r/crl")))
    assert decode(encode(bare)) == bare


@pytest.mark.parametrize("blob", [b"", b"not json", b"{}", b'{"ui": 1}'])
def test_unreadable_data_is_a_config_error(blob: bytes) -> None:
    with pytest.raises(ConfigError, match="start-up data is unreadable"):
        decode(blob)


def test_reading_closes_the_descriptor_that_carried_the_key() -> None:
    fd = os.memfd_create("test-handoff", 0)
    os.write(fd, encode(sample()))
    os.lseek(fd, 0, os.SEEK_SET)
    assert read_handoff(fd).daemon.server_key == "KEY"
    with pytest.raises(OSError):
        os.fstat(fd)
