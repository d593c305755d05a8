from __future__ import annotations

import ipaddress

import pytest

from joblet.errors import InvalidArgument
from joblet.network import addressing as ad

N = ipaddress.IPv4Network


@pytest.mark.parametrize("name", ["a", "net-1", "0abc", "a" * 32])
def test_valid_names(name: str) -> None:
    ad.validate_name(name)


@pytest.mark.parametrize(
    "name", ["", "-a", "A", "../x", "a/b", "a" * 33, "bridge", "none", "host", "a_b"]
)
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidArgument):
        ad.validate_name(name)


@pytest.mark.parametrize(
    ("cidr", "why"),
    [
        ("fd00::/64", "IPv6"),
        ("8.8.8.0/24", "RFC 1918"),
        ("10.1.0.1/24", "network address"),
        ("10.0.0.0/8", "/16 to /29"),
        ("10.1.0.0/30", "/16 to /29"),
        ("nonsense", "invalid"),
        ("10.1.0.0", "network address"),
    ],
)
def test_bad_cidrs(cidr: str, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why):
        ad.parse_cidr(cidr)


def test_good_cidrs() -> None:
    assert ad.parse_cidr("10.1.0.0/24") == N("10.1.0.0/24")
    assert ad.parse_cidr("100.64.8.0/29") == N("100.64.8.0/29")
    assert ad.parse_cidr("192.168.0.0/16") == N("192.168.0.0/16")


def test_overlaps() -> None:
    taken = {"bridge": N("172.20.0.0/16")}
    with pytest.raises(InvalidArgument, match="bridge"):
        ad.check_overlaps(N("172.20.5.0/24"), taken, [])
    with pytest.raises(InvalidArgument, match="host"):
        ad.check_overlaps(N("10.0.0.0/16"), taken, [N("10.0.3.7/32")])
    ad.check_overlaps(N("10.1.0.0/16"), taken, [N("0.0.0.0/0"), N("10.0.3.7/32")])


def test_interface_names_fit_and_differ() -> None:
    names = {ad.bridge_name("daemon-a", f"net{i}") for i in range(200)}
    assert len(names) == 200
    assert all(len(n) <= 15 for n in names)
    assert ad.bridge_name("a", "x") != ad.bridge_name("b", "x")
    uuid = "0123e4567-e89b-12d3-a456-426614174000"
    for isolated in (True, False):
        name = ad.host_veth_name("d" * 64, uuid, isolated)
        assert len(name) <= 15 and name.startswith(ad.daemon_prefix("d" * 64))


def test_address_allocation_skips_gateway_and_reuses_late() -> None:
    net = N("10.9.0.0/29")  # offsets 2..6 usable
    used: set[int] = set()
    cursor = 0
    got = []
    while (found := ad.next_address(net, used, cursor)) is not None:
        offset, cursor = found
        used.add(offset)
        got.append(offset)
    assert got == [2, 3, 4, 5, 6]
    used.discard(3)
    used.discard(5)
    assert ad.next_address(net, used, cursor) == (3, 3)  # wrapped to the first free


def test_freed_address_not_reused_before_wrap() -> None:
    net = N("10.9.0.0/24")
    assert ad.next_address(net, {2, 4}, 4) == (5, 5)
    assert ad.next_address(net, set(), 4) == (5, 5)


def test_isolated_subnets() -> None:
    pool = N("10.254.0.0/16")
    assert ad.next_subnet(pool, set(), 0) == (1, 1)
    assert ad.subnet30(pool, 1) == N("10.254.0.4/30")
    assert ad.gateway(ad.subnet30(pool, 1)) == ipaddress.IPv4Address("10.254.0.5")
    small = N("10.254.0.0/29")
    assert ad.next_subnet(small, {0, 1}, 1) is None


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("10mbit", 10_000_000),
        ("1gbit", 10**9),
        ("500kbit", 500_000),
        ("1234", 1234),
        ("1.5Mbit", 1_500_000),
        ("1mbps", 8_000_000),
    ],
)
def test_parse_rate(text: str, bps: int) -> None:
    assert ad.parse_rate(text) == bps


@pytest.mark.parametrize("text", ["", "10 furlongs", "-5", "mbit"])
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(InvalidArgument):
        ad.parse_rate(text)


def test_burst_grows_with_rate() -> None:
    assert ad.tbf_burst_bytes(10**9) == 10**9 // 8 // 100  # 10 ms
    assert ad.tbf_burst_bytes(10**6) >= 4 * 1514


def test_tbf_queue_is_100_ms_capped_and_never_below_the_bucket() -> None:
    assert ad.tbf_limit_bytes(10**8) == 10**8 // 8 // 10
    assert ad.tbf_limit_bytes(10**10) == 32 * 1024 * 1024
    assert ad.tbf_limit_bytes(10**5) == ad.tbf_burst_bytes(10**5)
