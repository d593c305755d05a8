"""cgroup.backend: a daemon without usable cgroups refuses to start unless the
config asks for jobs without limits (`none`), which then runs them with a warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from joblet.config.loader import parse_daemon_config
from joblet.resources.detect import CgroupLayout, cgroup_verdict, create_cgroup_manager
from joblet.resources.null import NullCgroupManager

ROOT = Path("/sys/fs/cgroup")
SECURITY = {"serverCert": "C", "serverKey": "K", "caCert": "A"}
V2 = CgroupLayout("v2", {"cpu": ROOT})
HIDDEN = CgroupLayout("none", {}, f"no cgroup filesystem mounted under {ROOT}")


def test_auto_with_usable_cgroups_starts_and_names_the_version() -> None:
    verdict = cgroup_verdict(V2, "auto", ROOT)
    assert verdict.usable
    assert verdict.message == f"cgroups: v2 under {ROOT}"


def test_auto_without_cgroups_refuses_saying_why_and_how_to_go_on() -> None:
    verdict = cgroup_verdict(HIDDEN, "auto", ROOT)
    assert not verdict.usable
    assert f"no cgroup filesystem mounted under {ROOT}" in verdict.message
    assert "cgroup.backend: none" in verdict.message
    assert "\n" not in verdict.message


@pytest.mark.parametrize("layout", [HIDDEN, V2])
def test_none_starts_with_a_warning_that_names_what_was_found(layout: CgroupLayout) -> None:
    verdict = cgroup_verdict(layout, "none", ROOT)
    assert verdict.usable
    assert "without CPU, memory, I/O or process limits" in verdict.message
    assert (layout.reason or "v2 found") in verdict.message


def test_none_gives_the_null_manager_even_where_cgroups_exist(tmp_path: Path) -> None:
    # The procfs given has no mountinfo: detection is not consulted at all.
    made = create_cgroup_manager(ROOT, "joblet", tmp_path, backend="none")
    assert isinstance(made, NullCgroupManager)
    assert made.reason == "cgroup.backend is none"


def parse(cgroup: dict[str, Any]) -> str:
    return parse_daemon_config({"security": SECURITY, "cgroup": cgroup}).cgroup.backend


def test_config_key_defaults_to_auto_and_takes_only_known_backends() -> None:
    assert parse({}) == "auto"
    assert parse({"backend": "none"}) == "none"
    with pytest.raises(ValueError, match=r"cgroup\.backend must be one of auto, none"):
        parse({"backend": "v3"})
