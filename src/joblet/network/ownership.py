"""Which nftables table and interfaces are one daemon's, and removing them.

Interface names hold only a short prefix of the node id (IFNAMSIZ), so two
daemons in one network namespace may share a prefix, and a name alone does not
tell whose an interface is. The table name does: it holds the prefix and 128
bits of the node id. A daemon refuses to start while another daemon's table
claims its prefix, and deletes only the interfaces its state records.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from joblet.network import addressing as ad
from joblet.network import firewall, hostnet
from joblet.network.alloclog import load_with_log
from joblet.network.state import recorded_links

log = logging.getLogger(__name__)
BUILTIN_BRIDGE = "bridge"


@dataclass(frozen=True)
class PrefixClaim:
    own_legacy: str  # this daemon's table under an earlier version's name, or ""
    others: list[str]  # tables of other daemons that use the same prefix


def claim_prefix(tables: list[str], prefix: str, table: str, recorded_table: str) -> PrefixClaim:
    """Who else in `tables` uses `prefix`. A table under the old, prefix-only
    name is this daemon's own until its state records the new name (`table`)."""
    others = [t for t in firewall.prefix_claimants(tables, prefix) if t != table]
    legacy = firewall.legacy_table_name(prefix)
    if legacy in others and recorded_table != table:
        others.remove(legacy)
        return PrefixClaim(legacy, others)
    return PrefixClaim("", others)


def remove_daemon_objects(table: str, prefix: str, recorded: set[str]) -> list[str]:
    """Delete the daemon's nftables table and those of its interfaces (all
    start with `prefix`) recorded as its own; the interfaces deleted. An
    interface with the same prefix that another daemon made stays."""
    firewall.apply(firewall.render_delete(table))
    names = [name for name in hostnet.links_with_prefix(prefix) if name in recorded]
    for name in names:
        hostnet.delete_link(name)
    return names


def remove_stopped_daemon_network(state_dir: str, daemon_id: str) -> list[str]:
    """What `remove_daemon_objects` removes, for a daemon that is not running
    (its state in `state_dir`), and its table under an earlier version's name.
    While another daemon's table claims the same prefix, only the table goes."""
    state = load_with_log(os.path.join(state_dir, "state.json"))
    prefix = ad.daemon_prefix(daemon_id)
    table = firewall.table_name(daemon_id, prefix)
    claim = claim_prefix(firewall.list_tables(), prefix, table, state.table)
    if claim.own_legacy:
        firewall.apply(firewall.render_delete(claim.own_legacy))
    if claim.others:
        log.warning(
            "interfaces starting with %s left alone: nftables table %s of another daemon"
            " claims that prefix", prefix, claim.others[0],
        )  # fmt: skip
        firewall.apply(firewall.render_delete(table))
        return []
    links = recorded_links(state, ad.bridge_name(daemon_id, BUILTIN_BRIDGE))
    return remove_daemon_objects(table, prefix, links)
