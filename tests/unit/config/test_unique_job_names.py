"""joblet.uniqueJobNames: whether a job's name must be free on the node."""

from __future__ import annotations

from typing import Any

import pytest

from joblet.config.loader import parse_daemon_config

SECURITY = {"serverCert": "C", "serverKey": "K", "caCert": "A"}


def parse(joblet: dict[str, Any]) -> bool:
    config = parse_daemon_config({"security": SECURITY, "joblet": joblet})
    return config.jobs.unique_job_names


def test_off_by_default_and_a_boolean() -> None:
    assert parse({}) is False
    assert parse({"uniqueJobNames": True}) is True
    with pytest.raises(ValueError, match=r"joblet\.uniqueJobNames must be true or false"):
        parse({"uniqueJobNames": "yes"})
