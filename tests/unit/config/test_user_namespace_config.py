"""joblet.userNamespace: whether jobs run in a user namespace of their own."""

from __future__ import annotations

from typing import Any

import pytest

from joblet.config.loader import parse_daemon_config

SECURITY = {"serverCert": "C", "serverKey": "K", "caCert": "A"}


def parse(joblet: dict[str, Any]) -> str:
    return parse_daemon_config({"security": SECURITY, "joblet": joblet}).jobs.user_namespace


def test_auto_by_default_and_auto_on_off_or_a_boolean() -> None:
    assert parse({}) == "auto"
    assert [parse({"userNamespace": v}) for v in ("auto", "on", "off")] == ["auto", "on", "off"]
    assert (parse({"userNamespace": True}), parse({"userNamespace": False})) == ("on", "off")


@pytest.mark.parametrize("value", ["yes please", 1, None, ["on"]])
def test_anything_else_is_refused_with_the_key_named(value: Any) -> None:
    with pytest.raises(ValueError, match=r"joblet\.userNamespace must be auto, on or off"):
        parse({"userNamespace": value})
