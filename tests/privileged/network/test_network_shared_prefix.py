"""Two daemons in one network namespace whose node ids give the same
interface prefix: the second refuses to start and touches nothing of the
first; a teardown of either removes only what it recorded as its own; a
table an earlier version of a daemon left under the old name goes once."""

from __future__ import annotations

import subprocess
import tempfile
from typing import Any

import pytest
from netns_harness import run_in_new_netns

from joblet.errors import ConfigError
from joblet.network import firewall, hostnet
from joblet.network.addressing import daemon_prefix
from joblet.network.config import NetworkConfig
from joblet.network.manager import NetworkManager
from joblet.network.ownership import remove_stopped_daemon_network

pytestmark = pytest.mark.privileged


def ids_sharing_a_prefix() -> tuple[str, str]:
    seen: dict[str, str] = {}
    n = 0
    while True:
        node_id = f"node-{n}"
        if (prefix := daemon_prefix(node_id)) in seen:
            return seen[prefix], node_id
        seen[prefix] = node_id
        n += 1


def _nft(*args: str) -> str:
    return subprocess.run(["nft", *args], check=True, capture_output=True, text=True).stdout


def _world() -> dict[str, Any]:
    tables, links = firewall.list_tables(), hostnet.links_with_prefix("")
    return {"tables": sorted(tables), "links": sorted(links)}


def _shared_prefix_scenario() -> dict[str, Any]:
    first_id, second_id = ids_sharing_a_prefix()
    prefix = daemon_prefix(first_id)
    first = NetworkManager(NetworkConfig(), tempfile.mkdtemp(), first_id)
    first.start()
    first.create_network("lab", "10.71.0.0/24")
    own_table = _nft("list", "table", "inet", first.table)
    # A link with the prefix that the first daemon did not make (as a third
    # party's, or a daemon's that raced it): never the first's to delete.
    stray = f"{prefix}bstray000"
    subprocess.run(["ip", "link", "add", stray, "type", "bridge"], check=True)
    before = _world()
    second_dir = tempfile.mkdtemp()
    second = NetworkManager(
        NetworkConfig(bridge_cidr="172.21.0.0/16", isolated_pool="10.253.0.0/16"),
        second_dir, second_id,
    )  # fmt: skip
    try:
        second.start()
        refusal = ""
    except ConfigError as exc:
        refusal = str(exc)
    after_refusal = _world()
    removed_by_second = remove_stopped_daemon_network(second_dir, second_id)
    after_second_teardown = _world()
    table_kept = _nft("list", "table", "inet", first.table) == own_table
    removed_by_first = first.remove_all()
    return {
        "prefix": prefix, "tables": (first.table, second.table), "stray": stray,
        "refusal": refusal, "before": before, "after_refusal": after_refusal,
        "removed_by_second": removed_by_second, "after_second_teardown": after_second_teardown,
        "table_kept": table_kept, "removed_by_first": sorted(removed_by_first), "end": _world(),
    }  # fmt: skip


def test_daemons_sharing_a_prefix_never_touch_each_others_table_or_links() -> None:
    out = run_in_new_netns(_shared_prefix_scenario)
    first_table, second_table = out["tables"]
    assert first_table != second_table
    assert first_table in out["before"]["tables"]
    assert "uses the interface prefix" in out["refusal"], out["refusal"]
    assert first_table in out["refusal"]
    assert out["after_refusal"] == out["before"]
    assert out["removed_by_second"] == []
    assert out["after_second_teardown"] == out["before"] and out["table_kept"]
    ours = [name for name in out["before"]["links"] if name.startswith(out["prefix"])]
    assert len(ours) == 3  # the bridge, lab's bridge and the stray
    assert out["removed_by_first"] == sorted(set(ours) - {out["stray"]})
    assert out["end"] == {"tables": [], "links": sorted(["lo", out["stray"]])}


def _legacy_scenario() -> dict[str, Any]:
    node_id = "upgraded-node"
    prefix = daemon_prefix(node_id)
    legacy = firewall.legacy_table_name(prefix)
    state_dir = tempfile.mkdtemp()
    _nft("add", "table", "inet", legacy)  # what the earlier version left
    manager = NetworkManager(NetworkConfig(), state_dir, node_id)
    manager.start()
    migrated = _world()["tables"]
    manager.remove_all()
    # Since then recorded as migrated: a table under the old name is now
    # another (older) daemon's, which owns the prefix.
    _nft("add", "table", "inet", legacy)
    try:
        NetworkManager(NetworkConfig(), state_dir, node_id).start()
        refusal = ""
    except ConfigError as exc:
        refusal = str(exc)
    return {"legacy": legacy, "table": manager.table, "migrated": migrated,
            "refusal": refusal, "end": _world()["tables"]}  # fmt: skip


def test_an_earlier_versions_table_is_removed_once() -> None:
    out = run_in_new_netns(_legacy_scenario)
    assert out["migrated"] == [out["table"]]
    assert out["legacy"] in out["refusal"]
    assert out["end"] == [out["legacy"]]
