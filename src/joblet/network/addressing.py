"""Pure rules of job networking: names, CIDRs, interface names, addresses, rates.

No I/O: the manager feeds in what it read from the host and its state.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping

from joblet.errors import InvalidArgument

BUILTIN_NAMES = frozenset({"bridge", "isolated", "none", "host", "default"})
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
IFNAMSIZ = 15  # usable characters of a Linux interface name
ALLOWED_RANGES = tuple(
    ipaddress.IPv4Network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
Net = ipaddress.IPv4Network


def check_name_format(name: str) -> None:
    """The shape of a custom network's name; it becomes part of file names."""
    if not NAME_RE.fullmatch(name):
        raise InvalidArgument(f"network name {name!r} must match [a-z0-9][a-z0-9-]{{0,31}}")


def validate_name(name: str) -> None:
    check_name_format(name)
    if name in BUILTIN_NAMES:
        raise InvalidArgument(f"network name {name!r} is built in")


def parse_cidr(cidr: str) -> Net:
    """A custom network's CIDR on its own (no overlap checks)."""
    text = cidr.strip()
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise InvalidArgument(f"invalid CIDR {cidr!r}") from exc
    if loose.version == 6:
        raise InvalidArgument("IPv6 networks are not supported yet")
    if "/" not in text or ipaddress.ip_interface(text).ip != loose.network_address:
        raise InvalidArgument(f"CIDR {cidr!r} must be a network address with a prefix ({loose}?)")
    assert isinstance(loose, Net)
    net = loose
    if not 16 <= net.prefixlen <= 29:
        raise InvalidArgument(f"CIDR {cidr!r} must be a /16 to /29")
    if not any(net.subnet_of(r) for r in ALLOWED_RANGES):
        raise InvalidArgument(f"CIDR {cidr!r} must lie in RFC 1918 space or 100.64.0.0/10")
    return net


def check_overlaps(net: Net, taken: dict[str, Net], host_nets: Iterable[Net]) -> None:
    """Refuse `net` if it overlaps a joblet network/pool (name -> net) or any
    host address, route or nameserver (given as networks, /32 for addresses)."""
    for name, other in sorted(taken.items()):
        if net.overlaps(other):
            raise InvalidArgument(f"{net} overlaps network {name!r} ({other})")
    for other in host_nets:
        if other.prefixlen > 0 and net.overlaps(other):
            raise InvalidArgument(f"{net} overlaps the host's {other}")


def clashes(nets: Mapping[str, str], others: Iterable[tuple[str, str]]) -> dict[str, str]:
    """name -> why, for each of `nets` (name -> CIDR) whose range overlaps an
    address or route of another interface (`others`: (network, interface)).
    The default route (/0) overlaps everything and is no clash."""
    found: dict[str, str] = {}
    parsed = [(ipaddress.ip_network(n, strict=False), link) for n, link in others]
    for name, cidr in nets.items():
        net = Net(cidr)
        for other, link in parsed:
            if other.prefixlen > 0 and other.version == 4 and net.overlaps(other):
                found[name] = f"network {name!r} ({cidr}) overlaps {other} on {link}"
                break
    return found


def daemon_prefix(daemon_id: str) -> str:
    """Four characters starting every interface name of one daemon."""
    return "j" + hashlib.sha256(daemon_id.encode()).hexdigest()[:3]


def bridge_name(daemon_id: str, network: str) -> str:
    digest = hashlib.sha256(network.encode()).hexdigest()[:8]
    return f"{daemon_prefix(daemon_id)}b{digest}"  # 13 characters


def host_veth_name(daemon_id: str, job_id: str, isolated: bool) -> str:
    tag = "i" if isolated else "v"
    name = f"{daemon_prefix(daemon_id)}{tag}{job_id.replace('-', '')[:10]}"
    assert len(name) <= IFNAMSIZ
    return name


def gateway(net: Net) -> ipaddress.IPv4Address:
    return net.network_address + 1


def next_address(net: Net, used: set[int], cursor: int) -> tuple[int, int] | None:
    """The next free host offset after `cursor` (wrapping), skipping the
    network address, the gateway (offset 1) and broadcast. Freed offsets are
    thus reused late: only after the cursor wrapped. Returns (offset, cursor)."""
    last = net.num_addresses - 2  # the highest usable offset
    first = 2
    span = last - first + 1
    for step in range(span):
        offset = first + (cursor - first + 1 + step) % span if cursor >= first else first + step
        if offset not in used:
            return offset, offset
    return None


def next_subnet(pool: Net, used: set[int], cursor: int) -> tuple[int, int] | None:
    """The next free /30 index of `pool` after `cursor` (wrapping)."""
    count = pool.num_addresses // 4
    for step in range(count):
        index = (cursor + 1 + step) % count
        if index not in used:
            return index, index
    return None


def subnet30(pool: Net, index: int) -> Net:
    return Net((int(pool.network_address) + 4 * index, 30))


_RATE_UNITS = {
    "": 1,
    "bit": 1,
    "kbit": 10**3,
    "mbit": 10**6,
    "gbit": 10**9,
    "tbit": 10**12,
    "bps": 8,
    "kbps": 8 * 10**3,
    "mbps": 8 * 10**6,
    "gbps": 8 * 10**9,
}
_RATE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*")


def parse_rate(text: str) -> int:
    """'10mbit', '1gbit', '500kbit', a bare number (bit/s), or tc's 'mbps'
    (megabytes/s) into bits per second."""
    match = _RATE_RE.fullmatch(text.lower())
    if not match or match.group(2) not in _RATE_UNITS:
        raise InvalidArgument(f"invalid rate {text!r} (e.g. 10mbit, 1gbit, or bits per second)")
    return int(float(match.group(1)) * _RATE_UNITS[match.group(2)])


TBF_BUCKET_S = 0.010
TBF_QUEUE_S = 0.100
TBF_QUEUE_MAX_BYTES = 32 * 1024 * 1024


def tbf_burst_bytes(bits_per_sec: int, mtu: int = 1500) -> int:
    """tbf's bucket: 10 ms of traffic, never below a few MTU-sized frames.

    tbf dequeues from a timer and softirq; when those wait for a busy CPU the
    bucket keeps the tokens of the wait. With 4 ms, 1 Gbit/s fell to 81-92% of
    the rate on a loaded 2-core host; with 10 ms it stayed at 93-96% (TCP
    goodput, ~4% is framing). Over 5 s the extra burst is 0.2% of the bytes."""
    return max(int(bits_per_sec / 8 * TBF_BUCKET_S), 4 * (mtu + 14), 16 * 1024)


def tbf_limit_bytes(bits_per_sec: int, mtu: int = 1500) -> int:
    """Bytes tbf queues beyond the bucket: ~100 ms at the rate keeps a TCP
    stream at the rate even at 10 Mbit/s (fewer drops, no collapse of the
    window), capped so a forwarded flood cannot pin much kernel memory (at
    the cap, 10 Gbit/s still queues 27 ms, more than a TCP window holds)."""
    queue = min(int(bits_per_sec / 8 * TBF_QUEUE_S), TBF_QUEUE_MAX_BYTES)
    return max(queue, tbf_burst_bytes(bits_per_sec, mtu))
