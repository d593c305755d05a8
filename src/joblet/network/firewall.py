"""The nftables ruleset of one daemon: pure text, applied whole with `nft -f -`.

All rules sit in one `inet` table named after the daemon (its interface
prefix and 128 bits of its node id, so two daemons never share a table; the
prefix in the name tells which daemon owns which interfaces), replaced atomically
(one transaction: create, delete, recreate) and deleted whole, so rules of
other software are never touched. Chains use `policy accept` and only match
joblet interfaces (all start with the daemon's prefix), so traffic that is not
ours passes through unchanged.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from dataclasses import dataclass

NFT = "nft"


@dataclass(frozen=True)
class FirewallNet:
    cidr: str
    iface: str  # a bridge name, or a wildcard ("jabci*") for isolated veths
    bridged: bool = True


def table_name(daemon_id: str, prefix: str) -> str:
    """The table of the daemon `daemon_id`, whose interfaces start with `prefix`."""
    return f"joblet_{prefix}_{hashlib.sha256(daemon_id.encode()).hexdigest()[:32]}"


def legacy_table_name(prefix: str) -> str:
    """The table name of earlier versions: the prefix alone (4,096 of them)."""
    return f"joblet_{prefix}"


def prefix_claimants(tables: list[str], prefix: str) -> list[str]:
    """The tables in `tables` whose daemon uses the interface prefix `prefix`."""
    ours = re.compile(rf"joblet_{re.escape(prefix)}(_[0-9a-f]+)?")
    return [name for name in tables if ours.fullmatch(name)]


def parse_tables(listing: str) -> list[str]:
    """The inet table names in `nft list tables` output."""
    names = []
    for line in listing.splitlines():
        words = line.split()
        if len(words) == 3 and words[:2] == ["table", "inet"]:
            names.append(words[2])
    return names


def render_ruleset(table: str, prefix: str, nets: list[FirewallNet]) -> str:
    """One transaction replacing `table` with rules for `nets`."""
    ours = f'"{prefix}*"'
    lines = [f"table inet {table} {{}}", f"delete table inet {table}", f"table inet {table} {{"]
    lines += _chain("forward", "filter hook forward priority filter - 5", _forward(ours, nets))
    lines += _chain("input", "filter hook input priority filter - 5", _input(ours))
    lines += _chain("postrouting", "nat hook postrouting priority srcnat", _nat(nets))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _chain(name: str, hook: str, rules: list[str]) -> list[str]:
    return [
        f"  chain {name} {{",
        f"    type {hook}; policy accept;",
        *[f"    {r}" for r in rules],
        "  }",
    ]


def _forward(ours: str, nets: list[FirewallNet]) -> list[str]:
    rules = [
        # A job sends only from its network's addresses (and cannot forge
        # others: CAP_NET_RAW and CAP_NET_ADMIN are dropped in the job).
        *[f'iifname "{n.iface}" ip saddr != {n.cidr} drop' for n in nets],
        f"iifname {ours} ip daddr 169.254.0.0/16 drop",
        f"iifname {ours} meta nfproto ipv6 drop",
        f"oifname {ours} meta nfproto ipv6 drop",
        # Within one bridge (seen here only when br_netfilter is loaded).
        *[f'iifname "{n.iface}" oifname "{n.iface}" accept' for n in nets if n.bridged],
        # Between joblet networks: dropped both ways (isolated veths are one
        # interface each, so isolated jobs cannot reach each other either).
        f"iifname {ours} oifname {ours} drop",
        # Nothing outside opens a connection to a job; replies pass.
        f"oifname {ours} ct state established,related accept",
        f"oifname {ours} drop",
        f"iifname {ours} accept",
    ]
    return rules


def _input(ours: str) -> list[str]:
    # Jobs never connect to the host's own addresses (gateway included).
    return [f"iifname {ours} ct state established,related accept", f"iifname {ours} drop"]


def _nat(nets: list[FirewallNet]) -> list[str]:
    return [f'ip saddr {n.cidr} oifname != "{n.iface}" masquerade' for n in nets]


def render_delete(table: str) -> str:
    return f"table inet {table} {{}}\ndelete table inet {table}\n"


def list_tables(nft: str = NFT) -> list[str]:
    """The inet tables of this network namespace."""
    return parse_tables(_run([nft, "list", "tables"], ""))


def apply(text: str, nft: str = NFT) -> None:
    """Run one nft transaction; raises OSError with nft's message."""
    _run([nft, "-f", "-"], text)


def _run(argv: list[str], stdin: str) -> str:
    try:
        proc = subprocess.run(
            argv, check=False, input=stdin, capture_output=True, text=True, timeout=10
        )
    except FileNotFoundError as exc:
        raise OSError(f"{argv[0]} is not installed (apt-get install nftables)") from exc
    if proc.returncode != 0:
        raise OSError(f"nft failed: {proc.stderr.strip()}")
    return proc.stdout
