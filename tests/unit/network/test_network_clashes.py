"""Which custom networks another interface's addresses or routes clash with."""

from __future__ import annotations

from joblet.network.addressing import clashes

NETS = {"lab": "192.168.231.0/24", "db": "10.30.0.0/24"}


def test_a_route_of_another_interface_on_the_range_is_a_clash() -> None:
    found = clashes(NETS, [("192.168.231.0/24", "jabcb12345678"), ("10.31.0.0/24", "eth0")])
    assert found == {
        "lab": "network 'lab' (192.168.231.0/24) overlaps 192.168.231.0/24 on jabcb12345678"
    }


def test_an_address_or_a_wider_route_inside_or_around_it_is_a_clash() -> None:
    assert set(clashes(NETS, [("10.30.0.7/32", "eth1")])) == {"db"}
    assert set(clashes(NETS, [("192.168.0.0/16", "wg0")])) == {"lab"}


def test_the_default_route_and_other_families_are_no_clash() -> None:
    assert clashes(NETS, [("0.0.0.0/0", "uplink0"), ("fd00::/8", "eth0")]) == {}
    assert clashes(NETS, []) == {}
