"""nftables table names: two daemons never share one, and the name tells
which interface prefix (and so which interfaces) a table's daemon owns."""

from __future__ import annotations

from joblet.network.addressing import daemon_prefix
from joblet.network.firewall import (
    legacy_table_name,
    parse_tables,
    prefix_claimants,
    table_name,
)
from joblet.network.ownership import PrefixClaim, claim_prefix

LISTING = """table inet joblet_jabc_0123456789abcdef0123456789abcdef
table ip nat
table inet joblet_jabc
table inet joblet_jabd_00000000000000000000000000000000
table inet joblet_jabcx
table inet keepme
"""


def ids_sharing_a_prefix() -> tuple[str, str]:
    """Two node ids whose interface prefixes are the same (1 in 4,096)."""
    seen: dict[str, str] = {}
    n = 0
    while True:
        node_id = f"node-{n}"
        prefix = daemon_prefix(node_id)
        if prefix in seen:
            return seen[prefix], node_id
        seen[prefix] = node_id
        n += 1


def test_daemons_sharing_an_interface_prefix_get_different_tables() -> None:
    first, second = ids_sharing_a_prefix()
    prefix = daemon_prefix(first)
    assert daemon_prefix(second) == prefix
    assert table_name(first, prefix) != table_name(second, prefix)
    assert table_name(first, prefix).startswith(f"joblet_{prefix}_")
    assert len(table_name(first, prefix)) == len("joblet_") + 4 + 1 + 32


def test_table_name_is_stable_for_a_node() -> None:
    assert table_name("node-a", "jabc") == table_name("node-a", "jabc")


def test_inet_tables_are_read_from_the_listing() -> None:
    assert parse_tables(LISTING) == [
        "joblet_jabc_0123456789abcdef0123456789abcdef",
        "joblet_jabc",
        "joblet_jabd_00000000000000000000000000000000",
        "joblet_jabcx",
        "keepme",
    ]
    assert parse_tables("") == []


def test_claimants_of_a_prefix_are_its_new_and_legacy_tables_only() -> None:
    tables = parse_tables(LISTING)
    assert prefix_claimants(tables, "jabc") == [
        "joblet_jabc_0123456789abcdef0123456789abcdef",
        "joblet_jabc",
    ]
    assert legacy_table_name("jabc") == "joblet_jabc"
    assert prefix_claimants(tables, "jzzz") == []


def test_a_legacy_table_is_own_until_the_new_name_is_recorded() -> None:
    tables = parse_tables(LISTING)
    ours = "joblet_jabc_0123456789abcdef0123456789abcdef"
    assert claim_prefix(tables, "jabc", ours, "") == PrefixClaim("joblet_jabc", [])
    assert claim_prefix(tables, "jabc", ours, ours) == PrefixClaim("", ["joblet_jabc"])


def test_another_daemons_new_table_is_always_a_clash() -> None:
    tables = parse_tables(LISTING)
    mine = "joblet_jabc_ffffffffffffffffffffffffffffffff"
    claim = claim_prefix(tables, "jabc", mine, "")
    assert claim == PrefixClaim("joblet_jabc", ["joblet_jabc_0123456789abcdef0123456789abcdef"])
    assert claim_prefix(tables, "jabd", "joblet_jabd_1", "") == PrefixClaim(
        "", ["joblet_jabd_00000000000000000000000000000000"]
    )
