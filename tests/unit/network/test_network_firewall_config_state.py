from __future__ import annotations

import os
from pathlib import Path

import pytest

from joblet.errors import ConfigError
from joblet.network.config import NetworkConfig, parse_network_config
from joblet.network.firewall import FirewallNet, render_delete, render_ruleset
from joblet.network.state import (
    Allocation,
    NetState,
    NetworkDef,
    load_state,
    render_hosts,
    rewrite_in_place,
    save_state,
)


def test_ruleset_is_one_replacing_transaction() -> None:
    text = render_ruleset(
        "joblet_jabc",
        "jabc",
        [FirewallNet("172.20.0.0/16", "jabcb0001"), FirewallNet("10.254.0.0/16", "jabci*", False)],
    )
    lines = text.splitlines()
    assert lines[:3] == [
        "table inet joblet_jabc {}",
        "delete table inet joblet_jabc",
        "table inet joblet_jabc {",
    ]
    assert 'iifname "jabcb0001" oifname "jabcb0001" accept' in text
    assert 'iifname "jabci*" oifname "jabci*" accept' not in text  # isolated jobs never meet
    assert 'iifname "jabc*" oifname "jabc*" drop' in text
    assert 'iifname "jabc*" ip daddr 169.254.0.0/16 drop' in text
    assert 'ip saddr 172.20.0.0/16 oifname != "jabcb0001" masquerade' in text
    assert text.index('oifname "jabcb0001" accept') < text.index('oifname "jabc*" drop')
    assert render_delete("joblet_jabc").endswith("delete table inet joblet_jabc\n")


def test_config_defaults_and_errors() -> None:
    assert parse_network_config(None) == NetworkConfig()
    cfg = parse_network_config({"dns": ["192.0.2.53"], "allowHost": True, "maxCustomNetworks": 2})
    assert cfg.dns == ("192.0.2.53",) and cfg.allow_host and cfg.max_custom_networks == 2
    for bad in ({"bogus": 1}, {"bridgeCidr": "fd00::/64"}, {"allowHost": "yes"}, {"dns": ["x"]},
                {"isolatedPool": "172.20.0.0/24"}, {"defaultMode": "host"}):  # fmt: skip
        with pytest.raises(ConfigError):
            parse_network_config(bad)


def test_config_big_tcp_modes() -> None:
    assert NetworkConfig().big_tcp == "auto"
    # YAML 1.1 reads a bare `on` / `off` as true / false.
    assert parse_network_config({"bigTcp": True}).big_tcp == "on"
    assert parse_network_config({"bigTcp": False}).big_tcp == "off"
    assert parse_network_config({"bigTcp": "off"}).big_tcp == "off"
    with pytest.raises(ConfigError, match="bigTcp must be auto, on or off"):
        parse_network_config({"bigTcp": "fast"})


def test_state_round_trip(tmp_path: Path) -> None:
    state = NetState(table="joblet_jabc", retired=["jabcb9"])
    state.networks["a"] = NetworkDef("a", "10.1.0.0/24", "jabcb1")
    path = str(tmp_path / "state.json")
    save_state(path, state)
    assert load_state(path) == state
    assert load_state(str(tmp_path / "missing.json")) == NetState()
    # The allocations are kept in their own log (see alloclog), not here.
    state.allocations["j1"] = Allocation(
        "j1", "a", "web", "10.1.0.2", 24, "10.1.0.1", "jabcvj1", 2, 10, 20
    )
    save_state(path, state)
    assert load_state(path).allocations == {}


def test_hosts_rewritten_in_place(tmp_path: Path) -> None:
    path = str(tmp_path / "hosts")
    rewrite_in_place(path, render_hosts([("10.1.0.2", "web", "abcdef0123")]))
    inode = os.stat(path).st_ino
    rewrite_in_place(path, render_hosts([]))
    assert os.stat(path).st_ino == inode
    assert "web" not in Path(path).read_text()
    text = render_hosts([("10.1.0.2", "web", "abcdef0123"), ("10.1.0.3", "", "99999999zz")])
    assert "10.1.0.2\tweb job-abcdef01" in text and "10.1.0.3\tjob-99999999" in text
