"""Set-up gives each root a cgroup parent and network ranges of its own."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
import yaml

from joblet.network import netlink
from joblet.setup.command import Surroundings, run_setup
from joblet.setup.layout import SetupError
from joblet.setup.ranges import (
    BRIDGE_CANDIDATES,
    POOL_CANDIDATES,
    OtherDaemon,
    Placement,
    PlacementRequest,
    choose_ranges,
    decide_placement,
    default_cgroup_parent,
    other_daemon_of,
    pick_free,
)

SERVICE = OtherDaemon("/opt/joblet", "joblet", "172.20.0.0/16", "10.254.0.0/16")
HOST = ["127.0.0.1/32", "192.0.2.2/32", "192.0.2.0/24"]


def test_the_default_root_keeps_the_historical_parent() -> None:
    assert default_cgroup_parent("/opt/joblet") == "joblet"
    assert default_cgroup_parent("/opt/joblet/") == "joblet"


def test_other_roots_get_a_stable_parent_of_their_own() -> None:
    demo = default_cgroup_parent("/tmp/joblet-demo")
    assert demo.startswith("joblet-") and len(demo) == len("joblet-") + 8
    assert demo == default_cgroup_parent("/tmp//joblet-demo/")
    assert demo != default_cgroup_parent("/tmp/joblet-demo2")


def test_pick_free_skips_what_the_host_routes() -> None:
    taken = [*HOST, "172.20.5.0/24", "172.21.0.1/32"]
    assert pick_free(BRIDGE_CANDIDATES, taken) == "172.22.0.0/16"


def test_pick_free_ignores_what_it_cannot_parse() -> None:
    assert pick_free(BRIDGE_CANDIDATES, ["garbage", "fe80::/64"]) == BRIDGE_CANDIDATES[0]


def test_a_wide_host_route_takes_every_candidate_it_covers() -> None:
    assert pick_free(BRIDGE_CANDIDATES, ["172.16.0.0/12"]) is None
    assert pick_free(POOL_CANDIDATES, ["10.0.0.0/8"]) is None


def test_choose_ranges_keeps_the_two_apart() -> None:
    bridge, pool = choose_ranges([], None, "172.20.0.0/24")
    assert (bridge, pool) == ("172.21.0.0/16", "172.20.0.0/24")
    assert choose_ranges([], "10.254.0.0/24", None) == ("10.254.0.0/24", "10.253.0.0/16")


def test_no_free_range_names_the_flag() -> None:
    with pytest.raises(SetupError, match="--bridge-cidr"):
        choose_ranges(["172.16.0.0/12"], None, None)
    with pytest.raises(SetupError, match="--isolated-pool"):
        choose_ranges(["10.0.0.0/8"], None, None)


def test_another_daemons_config_is_read_with_its_defaults() -> None:
    text = "cgroup: {parent: jobs/a}\nnetwork: {bridgeCidr: 10.9.0.0/24}\n"
    other = other_daemon_of("/srv/a/", text)
    assert other == OtherDaemon("/srv/a", "jobs/a", "10.9.0.0/24", "10.254.0.0/16")
    assert other_daemon_of("/srv/a", "cgroup: [") is None
    assert other_daemon_of("/srv/a", "- a list") is None


def test_placement_avoids_the_service_and_the_host() -> None:
    placement = decide_placement("/tmp/demo", PlacementRequest(), None, HOST, [SERVICE])
    assert placement == Placement(
        default_cgroup_parent("/tmp/demo"), "172.21.0.0/16", "10.253.0.0/16"
    )


def test_placement_refuses_another_daemons_parent() -> None:
    with pytest.raises(SetupError, match=r"root /opt/joblet.*--cgroup-parent"):
        decide_placement("/tmp/demo", PlacementRequest("joblet"), None, HOST, [SERVICE])


def test_placement_refuses_another_daemons_ranges() -> None:
    asked = PlacementRequest(bridge_cidr="172.20.128.0/17")
    with pytest.raises(SetupError, match="--bridge-cidr"):
        decide_placement("/tmp/demo", asked, None, HOST, [SERVICE])


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        (PlacementRequest(cgroup_parent="../up"), "relative path"),
        (PlacementRequest(bridge_cidr="172.20.1.0/16"), "host bits"),
        (PlacementRequest(bridge_cidr="nonsense"), "--bridge-cidr"),
        (PlacementRequest(isolated_pool="10.0.0.0/8"), "/16 to /29"),
        (PlacementRequest(bridge_cidr="10.5.0.0/16", isolated_pool="10.5.0.0/24"), "overlaps"),
    ],
)
def test_bad_requests_are_clear_errors(asked: PlacementRequest, message: str) -> None:
    with pytest.raises(SetupError, match=message):
        decide_placement("/tmp/demo", asked, None, HOST, [])


def test_set_up_again_keeps_the_current_placement() -> None:
    """A daemon already running on this root has its bridge on the host's routes:
    what its config says is kept, not replaced by the next free range."""
    current = OtherDaemon("/tmp/demo", "mine", "172.20.0.0/16", "10.254.0.0/16")
    host = [*HOST, "172.20.0.0/16"]
    placement = decide_placement("/tmp/demo", PlacementRequest(), current, host, [])
    assert placement == Placement("mine", "172.20.0.0/16", "10.254.0.0/16")
    asked = PlacementRequest("other", "10.7.0.0/24", None)
    placement = decide_placement("/tmp/demo", asked, current, host, [])
    assert placement == Placement("other", "10.7.0.0/24", "10.254.0.0/16")


def test_run_setup_writes_the_placement(tmp_path: Path) -> None:
    surroundings = Surroundings(
        host_networks=lambda: [*HOST, "172.21.0.0/16"],
        other_daemons=lambda root: [SERVICE],
        current=lambda root: None,
    )
    result = run_setup(tmp_path / "r", "127.0.0.1", 50051, [], False, surroundings=surroundings)
    raw = yaml.safe_load(result.files.daemon_config.read_text())
    assert raw["cgroup"]["parent"] == default_cgroup_parent(str(tmp_path / "r"))
    assert raw["network"] == {"bridgeCidr": "172.22.0.0/16", "isolatedPool": "10.253.0.0/16"}
    assert "cgroup parent: joblet-" in result.summary()


def test_run_setup_refuses_before_writing_anything(tmp_path: Path) -> None:
    surroundings = Surroundings(lambda: HOST, lambda root: [SERVICE], lambda root: None)
    asked = PlacementRequest(cgroup_parent="joblet")
    with pytest.raises(SetupError):
        run_setup(tmp_path / "r", "127.0.0.1", 50051, [], False, asked=asked,
                  surroundings=surroundings)  # fmt: skip
    assert not (tmp_path / "r").exists()


# ---- the host's addresses and routes, from rtnetlink payloads ---------------


def _attr(kind: int, payload: bytes) -> bytes:
    return netlink.attr(kind, payload)


def test_addr_payload_gives_a_host_address() -> None:
    body = struct.pack("=BBBBi", socket.AF_INET, 24, 0, 0, 2)
    body += _attr(netlink.IFA_ADDRESS, socket.inet_aton("192.0.2.2"))
    assert netlink.addr_network(body) == "192.0.2.2/32"
    v6 = struct.pack("=BBBBi", socket.AF_INET6, 64, 0, 0, 2) + _attr(1, bytes(16))
    assert netlink.addr_network(v6) is None


def _route(dst: str | None, dst_len: int, kind: int = netlink.RTN_UNICAST) -> bytes:
    body = struct.pack("=BBBBBBBBI", socket.AF_INET, dst_len, 0, 0, 254, 3, 0, kind, 0)
    return body + (_attr(netlink.RTA_DST, socket.inet_aton(dst)) if dst else b"")


def test_route_payload_gives_its_destination() -> None:
    assert netlink.route_network(_route("172.20.0.0", 16)) == "172.20.0.0/16"
    assert netlink.route_network(_route(None, 0)) is None  # the default route
    assert netlink.route_network(_route("127.0.0.0", 8, kind=2)) is None  # local


def test_set_up_again_replaces_what_another_daemon_took_meanwhile() -> None:
    """A root set up before parents were per root says `joblet` and the default
    ranges, like the service's own config: set-up again moves it off them."""
    stale = OtherDaemon("/tmp/demo", "joblet", "172.20.0.0/16", "10.254.0.0/16")
    placement = decide_placement("/tmp/demo", PlacementRequest(), stale, HOST, [SERVICE])
    assert placement == Placement(
        default_cgroup_parent("/tmp/demo"), "172.21.0.0/16", "10.253.0.0/16"
    )
    broken = OtherDaemon("/tmp/demo", "../x", "not-a-cidr", "")
    placement = decide_placement("/tmp/demo", PlacementRequest(), broken, HOST, [])
    assert placement == Placement(
        default_cgroup_parent("/tmp/demo"), *choose_ranges([], None, None)
    )
