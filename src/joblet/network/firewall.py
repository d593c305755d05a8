"""The nftables ruleset of one daemon: pure text, applied whole with `nft -f -`.

All rules sit in one `inet` table named after the daemon, replaced atomically
(one transaction: create, delete, recreate) and deleted whole, so rules of
other software are never touched. Chains use `policy accept` and only match
joblet interfaces (all start with the daemon's prefix), so traffic that is not
ours passes through unchanged.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

NFT = "nft"


@dataclass(frozen=True)
class FirewallNet:
    cidr: str
    iface: str  # a bridge name, or a wildcard ("jabci*") for isolated veths
    bridged: bool = True


def table_name(prefix: str) -> str:
    return f"joblet_{prefix}"


def render_ruleset(prefix: str, nets: list[FirewallNet]) -> str:
    """One transaction replacing the daemon's table with rules for `nets`."""
    table = table_name(prefix)
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


def render_delete(prefix: str) -> str:
    table = table_name(prefix)
    return f"table inet {table} {{}}\ndelete table inet {table}\n"


def apply(text: str, nft: str = NFT) -> None:
    """Run one nft transaction; raises OSError with nft's message."""
    try:
        proc = subprocess.run(
            [nft, "-f", "-"], check=False, input=text, capture_output=True, text=True, timeout=10
        )
    except FileNotFoundError as exc:
        raise OSError(f"{nft} is not installed (apt-get install nftables)") from exc
    if proc.returncode != 0:
        raise OSError(f"nft failed: {proc.stderr.strip()}")
