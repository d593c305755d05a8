"""A small rtnetlink client: just the requests a job's network set-up needs.

Encoders are pure (they return a `Request`: message type, flags, body bytes);
`RtNetlink` sends a batch of them in one sendmsg, each with NLM_F_ACK, and
checks every ack. The kernel handles the messages of one datagram in order and
answers each (netlink(7)), so a batch costs one round trip; a failed request
is raised as OSError(errno) once the whole batch is answered.

Layouts from include/uapi/linux/{netlink,rtnetlink,if_link,veth,pkt_sched}.h.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Sequence
from types import TracebackType
from typing import NamedTuple

NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE, RTM_GETROUTE, RTM_NEWQDISC = 20, 24, 26, 36
IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_AF_SPEC = 3, 4, 10, 18, 26
IFLA_NET_NS_FD = 28
IFLA_GSO_IPV4_MAX_SIZE, IFLA_GRO_IPV4_MAX_SIZE = 63, 64
# The kernel's largest GSO packet (GSO_MAX_SIZE, 8 * 65535) and its default.
BIG_TCP_BYTES = 524280
LEGACY_GSO_BYTES = 65536
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE = 8, 1
IFF_UP = 0x1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_GATEWAY, RTA_OIF, RTA_MULTIPATH = 5, 4, 9
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_TBF_PARMS, TCA_TBF_RATE64, TCA_TBF_BURST = 1, 4, 6
TC_H_ROOT = 0xFFFFFFFF
TC_LINKLAYER_ETHERNET = 1
PSCHED_SHIFT = 6  # tc "ticks" are 64 ns (include/net/pkt_sched.h)

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NLMSGERR = struct.Struct("=i")  # error, then the offending request's header
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBi")  # family, prefixlen, flags, scope, index
# rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTMSG = struct.Struct("=BBBBBBBBI")
_TCMSG = struct.Struct("=BxxxiIII")  # family, ifindex, handle, parent, info
_RATESPEC = struct.Struct("=BBHhHI")  # cell_log, linklayer, overhead, cell_align, mpu, rate
_RTATTR = struct.Struct("=HH")  # len, type

_CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
_CHANGE = NLM_F_REQUEST | NLM_F_ACK


class Request(NamedTuple):
    type: int
    flags: int
    body: bytes


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    length = _RTATTR.size + len(payload)
    return _RTATTR.pack(length, kind) + payload + b"\0" * (_align(length) - length)


def _u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def _name(kind: int, name: str) -> bytes:
    return attr(kind, name.encode() + b"\0")


def _ipv4(address: str) -> bytes:
    return ipaddress.IPv4Address(address).packed


def pack_message(req: Request, seq: int, pid: int = 0) -> bytes:
    """nlmsghdr + body (bodies are always 4-byte aligned here)."""
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(req.body), req.type, req.flags, seq, pid) + req.body


def veth_create(name: str, mtu: int, peer: str, peer_ns_fd: int, gso_bytes: int = 0) -> Request:
    """`name` in the socket's namespace, its peer created in peer_ns_fd's.

    `gso_bytes` (0: the kernel's default, 64 KiB) sets both ends' IPv4
    GSO/GRO limit: with 512 KiB ("BIG TCP") a TCP stream hands the stack
    packets eight times larger, so the bridge, br_netfilter and conntrack
    run eight times less per byte. Kernels before 6.3 ignore it."""
    size = _gso(gso_bytes)
    peer_msg = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    peer_msg += _name(IFLA_IFNAME, peer) + _u32(IFLA_MTU, mtu) + _u32(IFLA_NET_NS_FD, peer_ns_fd)
    peer_msg += size
    info = _name(IFLA_INFO_KIND, "veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_msg))
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    body += _name(IFLA_IFNAME, name) + _u32(IFLA_MTU, mtu) + size
    body += attr(IFLA_LINKINFO, info)
    return Request(RTM_NEWLINK, _CREATE, body)


def _gso(size: int) -> bytes:
    if not size:
        return b""
    return _u32(IFLA_GSO_IPV4_MAX_SIZE, size) + _u32(IFLA_GRO_IPV4_MAX_SIZE, size)


def link_get(name: str) -> Request:
    """RTM_GETLINK by name; the reply's ifinfomsg carries the index."""
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _name(IFLA_IFNAME, name)
    return Request(RTM_GETLINK, _CHANGE, body)


def bridge_create(name: str, mtu: int) -> Request:
    """A new bridge `name` (down, no address)."""
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    body += _name(IFLA_IFNAME, name) + _u32(IFLA_MTU, mtu)
    body += attr(IFLA_LINKINFO, _name(IFLA_INFO_KIND, "bridge"))
    return Request(RTM_NEWLINK, _CREATE, body)


def link_delete(index: int) -> Request:
    return Request(RTM_DELLINK, _CHANGE, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0))


def link_set(
    index: int, *, up: bool = False, master: int = 0, no_ipv6: bool = False, gso_bytes: int = 0
) -> Request:
    """Change a link: bring it up, enslave it, stop IPv6 address generation
    (IN6_ADDR_GEN_MODE_NONE: no link-local address when it comes up), or
    set its IPv4 GSO/GRO limit."""
    flags, change = (IFF_UP, IFF_UP) if up else (0, 0)
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change) + _gso(gso_bytes)
    if master:
        body += _u32(IFLA_MASTER, master)
    if no_ipv6:
        inet6 = attr(IFLA_INET6_ADDR_GEN_MODE, bytes([IN6_ADDR_GEN_MODE_NONE]))
        body += attr(IFLA_AF_SPEC, attr(socket.AF_INET6, inet6))
    return Request(RTM_NEWLINK, _CHANGE, body)


def addr_add(index: int, address: str, prefixlen: int) -> Request:
    """An IPv4 address, with the subnet broadcast as `ip addr add ... brd +`."""
    body = _IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
    body += attr(IFA_LOCAL, _ipv4(address)) + attr(IFA_ADDRESS, _ipv4(address))
    if prefixlen < 31:
        net = ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False)
        body += attr(IFA_BROADCAST, net.broadcast_address.packed)
    return Request(RTM_NEWADDR, _CREATE, body)


def default_route(gateway: str, index: int) -> Request:
    """0.0.0.0/0 via gateway out of interface `index`, main table."""
    body = _RTMSG.pack(
        socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0
    )
    body += attr(RTA_GATEWAY, _ipv4(gateway)) + _u32(RTA_OIF, index)
    return Request(RTM_NEWROUTE, _CREATE, body)


def tbf_add(index: int, rate_bytes: int, burst: int, limit: int) -> Request:
    """A root tbf qdisc; rate in bytes per second, burst and limit in bytes.

    The bucket is given as TCA_TBF_BURST (bytes), so no rate table is needed:
    tbf_change() derives the buffer time from it (net/sched/sch_tbf.c)."""
    rate32 = min(rate_bytes, 0xFFFFFFFF)
    rate = _RATESPEC.pack(0, TC_LINKLAYER_ETHERNET, 0, -1, 0, rate32)
    peak = _RATESPEC.pack(0, 0, 0, 0, 0, 0)
    buffer_ticks = (burst * 1_000_000_000 // rate_bytes) >> PSCHED_SHIFT
    parms = rate + peak + struct.pack("=III", limit, min(buffer_ticks, 0xFFFFFFFF), 0)
    options = attr(TCA_TBF_PARMS, parms) + _u32(TCA_TBF_BURST, burst)
    if rate_bytes >= 1 << 32:
        options += attr(TCA_TBF_RATE64, struct.pack("=Q", rate_bytes))
    body = _TCMSG.pack(socket.AF_UNSPEC, index, 0, TC_H_ROOT, 0)
    body += _name(TCA_KIND, "tbf") + attr(TCA_OPTIONS, options)
    return Request(RTM_NEWQDISC, _CREATE, body)


def parse_replies(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, seq, payload) of each message in one received datagram."""
    out, offset = [], 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        out.append((kind, seq, data[offset + _NLMSGHDR.size : offset + length]))
        offset += _align(length)
    return out


def attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """The rtattrs of `data` from `offset`, by type (the last of a type wins)."""
    out: dict[int, bytes] = {}
    while offset + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            break
        out[kind] = data[offset + _RTATTR.size : offset + length]
        offset += _align(length)
    return out


class LinkInfo(NamedTuple):
    ifindex: int
    name: str
    gso_ipv4_max: int | None  # None: the kernel does not report it (before 6.3)


def link_info(payload: bytes) -> LinkInfo:
    """Index, IFLA_IFNAME ("" if none) and IPv4 GSO limit of an RTM_NEWLINK payload."""
    found = attrs(payload, _IFINFOMSG.size)
    gso = found.get(IFLA_GSO_IPV4_MAX_SIZE)
    name = found.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode()
    return LinkInfo(reply_index(payload), name, struct.unpack("=I", gso)[0] if gso else None)


_RTNEXTHOP = struct.Struct("=HBBi")  # len, flags, hops, ifindex


def route_devices(payload: bytes) -> list[int]:
    """Interface indexes an RTM_NEWROUTE payload sends through (RTA_OIF, or
    every hop of a multipath route)."""
    found = attrs(payload, _RTMSG.size)
    out = []
    if RTA_OIF in found:
        out.append(struct.unpack("=i", found[RTA_OIF])[0])
    hops, offset = found.get(RTA_MULTIPATH, b""), 0
    while offset + _RTNEXTHOP.size <= len(hops):
        length, _flags, _hops, index = _RTNEXTHOP.unpack_from(hops, offset)
        if length < _RTNEXTHOP.size:
            break
        out.append(index)
        offset += _align(length)
    return out


RTM_GETADDR, RTA_DST, RTA_TABLE = 22, 1, 15


def addr_network(payload: bytes) -> str | None:
    """An IPv4 RTM_NEWADDR payload's address as a /32 (None for other families)."""
    family = _IFADDRMSG.unpack_from(payload)[0]
    found = attrs(payload, _IFADDRMSG.size)
    raw = found.get(IFA_LOCAL) or found.get(IFA_ADDRESS)
    if family != socket.AF_INET or raw is None or len(raw) != 4:
        return None
    return f"{ipaddress.IPv4Address(raw)}/32"


def route_network(payload: bytes) -> str | None:
    """The destination of an IPv4 unicast RTM_NEWROUTE payload, any table; None
    for default routes (they cover everything) and other kinds."""
    family, dst_len, *_rest, kind, _flags = _RTMSG.unpack_from(payload)
    raw = attrs(payload, _RTMSG.size).get(RTA_DST)
    if family != socket.AF_INET or kind != RTN_UNICAST or not dst_len or raw is None:
        return None
    return str(ipaddress.IPv4Network((int.from_bytes(raw, "big"), dst_len), strict=False))


def reply_index(payload: bytes) -> int:
    """The interface index of an RTM_NEWLINK reply."""
    return int(_IFINFOMSG.unpack_from(payload)[2])


class RtNetlink:
    """A NETLINK_ROUTE socket in the namespace that was current when opened."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self._seq = 0

    def __enter__(self) -> RtNetlink:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def transact(self, requests: Sequence[Request]) -> list[bytes]:
        """Send all, wait for every ack; each request's reply payload (b"" if
        it had none). The first failed request raises OSError(errno)."""
        first = self._seq + 1
        self._seq += len(requests)
        self._sock.send(b"".join(pack_message(r, first + i) for i, r in enumerate(requests)))
        replies = [b""] * len(requests)
        errors = [0] * len(requests)
        pending = len(requests)
        while pending:
            for kind, seq, payload in parse_replies(self._sock.recv(65536)):
                slot = seq - first
                if not 0 <= slot < len(requests):
                    continue  # a stray answer to an earlier, abandoned batch
                if kind == NLMSG_ERROR:
                    errors[slot] = -_NLMSGERR.unpack_from(payload)[0]
                    pending -= 1
                else:
                    replies[slot] = payload
        for err in errors:
            if err:
                raise OSError(err, os.strerror(err))
        return replies

    def link_indexes(self, *names: str) -> list[int]:
        """Interface indexes by name, one round trip."""
        return [reply_index(p) for p in self.transact([link_get(n) for n in names])]

    def link_names(self) -> list[str]:
        """The names of every link in the namespace (an RTM_GETLINK dump)."""
        return [link.name for link in self.links() if link.name]

    def links(self) -> list[LinkInfo]:
        """Every link of the namespace (an RTM_GETLINK dump)."""
        request = Request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, _IFINFOMSG.pack(0, 0, 0, 0, 0))
        return [link_info(p) for p in self._dump(request, RTM_NEWLINK)]

    def route_devices(self) -> set[int]:
        """Indexes of the links that IPv4 routes (all tables) send through."""
        body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        request = Request(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, body)
        return {i for p in self._dump(request, RTM_NEWROUTE) for i in route_devices(p)}

    def ipv4_networks(self) -> list[str]:
        """The namespace's IPv4 addresses (/32) and unicast route destinations."""
        addr = Request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, _IFADDRMSG.pack(2, 0, 0, 0, 0))
        route = Request(
            RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, _RTMSG.pack(2, 0, 0, 0, 0, 0, 0, 0, 0)
        )
        found = [addr_network(p) for p in self._dump(addr, RTM_NEWADDR)]
        found += [route_network(p) for p in self._dump(route, RTM_NEWROUTE)]
        return [net for net in found if net is not None]

    def ipv4_networks_by_link(self) -> list[tuple[str, int]]:
        """(network, interface index) for each IPv4 address (/32) and each
        unicast route destination that goes through an interface."""
        addr = Request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, _IFADDRMSG.pack(2, 0, 0, 0, 0))
        route = Request(
            RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, _RTMSG.pack(2, 0, 0, 0, 0, 0, 0, 0, 0)
        )
        found: list[tuple[str | None, int]] = [
            (addr_network(p), _IFADDRMSG.unpack_from(p)[4]) for p in self._dump(addr, RTM_NEWADDR)
        ]
        for payload in self._dump(route, RTM_NEWROUTE):
            net = route_network(payload)
            found += [(net, index) for index in route_devices(payload)]
        return [(net, index) for net, index in found if net is not None]

    def _dump(self, request: Request, reply_type: int) -> list[bytes]:
        self._seq += 1
        seq = self._seq
        self._sock.send(pack_message(request, seq))
        payloads: list[bytes] = []
        while True:
            for kind, reply_seq, payload in parse_replies(self._sock.recv(65536)):
                if reply_seq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return payloads
                if kind == NLMSG_ERROR:
                    err = -_NLMSGERR.unpack_from(payload)[0]
                    raise OSError(err, os.strerror(err))
                if kind == reply_type:
                    payloads.append(payload)
