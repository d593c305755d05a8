"""The `network:` section of the daemon config (camelCase keys).

network:
  bridgeCidr: 172.20.0.0/16     # the default `bridge` network
  isolatedPool: 10.254.0.0/16   # split into one /30 per `isolated` job
  defaultMode: bridge           # what an empty RunJobRequest.network means
  dns: []                       # nameservers for jobs; empty = the host's
  dnsFallback: []               # used when the host's are loopback-only
  allowHost: false              # `host` mode (admin role only)
  maxCustomNetworks: 32
  mtu: 1500
  maxBitsPerSec: 10000000000    # ceiling of the per-job rate fields
  defaultIngressBitsPerSec: 0   # 0 = unlimited
  defaultEgressBitsPerSec: 0
  bigTcp: auto                  # 512 KiB GSO packets on job veths: auto, on, off
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from joblet.config.keys import Schema, unknown_keys
from joblet.errors import ConfigError

MODES = ("bridge", "isolated", "none", "host")
KEYS: Schema = dict.fromkeys(
    (
        "bridgeCidr",
        "isolatedPool",
        "defaultMode",
        "dns",
        "dnsFallback",
        "allowHost",
        "maxCustomNetworks",
        "mtu",
        "maxBitsPerSec",
        "defaultIngressBitsPerSec",
        "defaultEgressBitsPerSec",
        "bigTcp",
    )
)
BIG_TCP_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class NetworkConfig:
    bridge_cidr: str = "172.20.0.0/16"
    isolated_pool: str = "10.254.0.0/16"
    default_mode: str = "bridge"
    dns: tuple[str, ...] = ()
    dns_fallback: tuple[str, ...] = ()
    allow_host: bool = False
    max_custom_networks: int = 32
    mtu: int = 1500
    max_bits_per_sec: int = 10_000_000_000
    default_ingress_bps: int = 0
    default_egress_bps: int = 0
    # auto: only when every link the daemon's routes use takes 512 KiB
    # packets too (else a job's packets leaving the host would be cut up in
    # software); on: always; off: the kernel's 64 KiB.
    big_tcp: str = "auto"


def parse_network_config(section: Mapping[str, object] | None) -> NetworkConfig:
    """The `network:` mapping (None: all defaults); raises ConfigError."""
    data = dict(section or {})
    problems = unknown_keys(data, KEYS, "network")
    if problems:
        raise ConfigError("; ".join(problems))
    base = NetworkConfig()
    config = NetworkConfig(
        bridge_cidr=_cidr(data.get("bridgeCidr", base.bridge_cidr), "bridgeCidr"),
        isolated_pool=_cidr(data.get("isolatedPool", base.isolated_pool), "isolatedPool"),
        default_mode=str(data.get("defaultMode", base.default_mode)),
        dns=_addresses(data.get("dns", ()), "dns"),
        dns_fallback=_addresses(data.get("dnsFallback", ()), "dnsFallback"),
        allow_host=_bool(data.get("allowHost", False), "allowHost"),
        max_custom_networks=_int(data.get("maxCustomNetworks", 32), "maxCustomNetworks", 0),
        mtu=_int(data.get("mtu", base.mtu), "mtu", 576),
        max_bits_per_sec=_int(data.get("maxBitsPerSec", base.max_bits_per_sec), "maxBitsPerSec", 1),
        default_ingress_bps=_int(data.get("defaultIngressBitsPerSec", 0), "defaultIngress", 0),
        default_egress_bps=_int(data.get("defaultEgressBitsPerSec", 0), "defaultEgress", 0),
        big_tcp=_big_tcp(data.get("bigTcp", base.big_tcp)),
    )
    if config.default_mode not in MODES or config.default_mode == "host":
        raise ConfigError(
            f"network.defaultMode must be bridge, isolated or none, not {config.default_mode!r}"
        )
    if ipaddress.ip_network(config.bridge_cidr).overlaps(
        ipaddress.ip_network(config.isolated_pool)
    ):
        raise ConfigError("network.bridgeCidr overlaps network.isolatedPool")
    return config


def _cidr(value: object, key: str) -> str:
    try:
        net = ipaddress.ip_network(str(value))
    except ValueError as exc:
        raise ConfigError(f"network.{key}: {exc}") from exc
    if net.version != 4 or not 16 <= net.prefixlen <= 29:
        raise ConfigError(f"network.{key} must be an IPv4 /16 to /29, not {value}")
    return str(net)


def _addresses(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"network.{key} must be a list of addresses")
    try:
        return tuple(str(ipaddress.ip_address(str(v))) for v in value)
    except ValueError as exc:
        raise ConfigError(f"network.{key}: {exc}") from exc


def _big_tcp(value: object) -> str:
    # YAML 1.1 reads a bare on/off as true/false.
    mode = {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value
    if mode not in BIG_TCP_MODES:
        raise ConfigError(f"network.bigTcp must be auto, on or off, not {value!r}")
    return str(mode)


def _bool(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"network.{key} must be true or false")
    return value


def _int(value: object, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"network.{key} must be an integer >= {minimum}")
    return value
