"""NetworkManager decisions that reach the host (overlap with host routes,
limits, exhaustion, refusals), in a throwaway namespace."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import pytest
from netns_harness import run_in_new_netns

from joblet.errors import JobletError
from joblet.network.config import NetworkConfig
from joblet.network.manager import NetworkManager

pytestmark = pytest.mark.privileged


def _code(fn: Any, *args: Any, **kw: Any) -> str:
    try:
        fn(*args, **kw)
    except JobletError as exc:
        return exc.code.name
    return "OK"


def _scenario() -> dict[str, Any]:
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    with IPRoute() as ipr:  # a host address the manager must avoid
        ipr.addr("add", index=1, address="10.50.0.1", prefixlen=24)
    state = tempfile.mkdtemp()
    mgr = NetworkManager(NetworkConfig(max_custom_networks=2), state, "rules")
    mgr.start()
    out = {
        "host_overlap": _code(mgr.create_network, "a", "10.50.0.0/16"),
        "bridge_overlap": _code(mgr.create_network, "a", "172.20.8.0/24"),
        "ipv6": _code(mgr.create_network, "a", "fd00::/64"),
        "public": _code(mgr.create_network, "a", "8.8.8.0/24"),
        "dotdot": _code(mgr.create_network, "../a", "10.60.0.0/24"),
        "long": _code(mgr.create_network, "a" * 33, "10.60.0.0/24"),
        "small": _code(mgr.create_network, "small", "10.60.0.0/29"),
        "dup": _code(mgr.create_network, "small", "10.61.0.0/29"),
        "overlap_custom": _code(mgr.create_network, "b", "10.60.0.0/24"),
        "third": "",
    }
    mgr.create_network("second", "10.62.0.0/24")
    out["third"] = _code(mgr.create_network, "third", "10.63.0.0/24")
    out["alloc"] = [_code(mgr.allocate, f"job{i}", "small", f"n{i}") for i in range(6)]
    out["same_name"] = _code(mgr.allocate, "other", "second", "n0")
    out["same_name_same_net"] = _code(mgr.allocate, "x2", "second", "n0")
    out["remove_in_use"] = _code(mgr.remove_network, "small")
    out["remove_queued"] = _code(mgr.remove_network, "second", ["queued-job"])
    out["remove_builtin"] = _code(mgr.remove_network, "bridge")
    out["host"] = _code(mgr.allocate, "h", "host", admin=True)
    out["none_rate"] = _code(mgr.allocate, "n", "none", ingress_bps=1000)
    out["too_fast"] = _code(mgr.allocate, "f", "bridge", egress_bps=10**12)
    out["list"] = [(n.name, n.job_count) for n in mgr.list_networks()]
    mgr.restore(["job0"])
    out["after_restore"] = mgr.jobs_on("small") + mgr.jobs_on("second")
    mgr.remove_all()
    shutil.rmtree(state)
    return out


def test_manager_refusals_and_limits() -> None:
    out = run_in_new_netns(_scenario)
    for key in (
        "host_overlap",
        "bridge_overlap",
        "ipv6",
        "public",
        "dotdot",
        "long",
        "overlap_custom",
    ):
        assert out[key] == "INVALID_ARGUMENT", key
    assert out["small"] == "OK"
    assert out["dup"] == "ALREADY_EXISTS"
    assert out["third"] == "RESOURCE_EXHAUSTED"
    assert out["alloc"] == ["OK"] * 5 + ["RESOURCE_EXHAUSTED"]  # a /29 has 5 job addresses
    assert out["same_name"] == "OK"
    assert out["same_name_same_net"] == "ALREADY_EXISTS"
    assert out["remove_in_use"] == out["remove_queued"] == "FAILED_PRECONDITION"
    assert out["remove_builtin"] == "INVALID_ARGUMENT"
    assert out["host"] == "PERMISSION_DENIED"
    assert out["none_rate"] == out["too_fast"] == "INVALID_ARGUMENT"
    assert ("small", 5) in [tuple(x) for x in out["list"]]
    assert out["after_restore"] == ["job0"]  # "other" released too
