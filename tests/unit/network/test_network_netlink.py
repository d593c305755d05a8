"""rtnetlink encoding against byte layouts written out by hand from the uapi
headers (little-endian hosts), plus read-only round trips to the real kernel
(RTM_GETLINK needs no privilege)."""

from __future__ import annotations

import errno
import socket
import struct
import sys

import pytest

from joblet.network import netlink as nl

pytestmark = pytest.mark.skipif(sys.byteorder != "little", reason="layouts written for LE")


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


CREATE = nl.NLM_F_REQUEST | nl.NLM_F_ACK | nl.NLM_F_CREATE | nl.NLM_F_EXCL  # 0x605
IFINFO_ANY = "00 00 0000 00000000 00000000 00000000"


def test_attr_pads_to_four_bytes_but_length_excludes_padding() -> None:
    assert nl.attr(3, b"eth0\0") == h("0900 0300 65746830 00 000000")
    assert nl.attr(1, b"") == h("0400 0100")


def test_pack_message_header() -> None:
    msg = nl.pack_message(nl.Request(16, CREATE, b"\xaa" * 4), seq=7, pid=9)
    assert msg == h("14000000 1000 0506 07000000 09000000 aaaaaaaa")


def test_link_set_up() -> None:
    req = nl.link_set(5, up=True)
    assert req == nl.Request(nl.RTM_NEWLINK, 0x5, h("00 00 0000 05000000 01000000 01000000"))


def test_link_set_master_and_no_ipv6() -> None:
    req = nl.link_set(5, master=2, no_ipv6=True)
    ifinfo = "00 00 0000 05000000 00000000 00000000"
    master = "0800 0a00 02000000"
    # IFLA_AF_SPEC(26) { AF_INET6(10) { IFLA_INET6_ADDR_GEN_MODE(8): u8 1 } }
    af_spec = "1000 1a00" + "0c00 0a00" + "0500 0800 01 000000"
    assert req.body == h(ifinfo + master + af_spec)
    assert req.flags == nl.NLM_F_REQUEST | nl.NLM_F_ACK  # change, never create


def test_veth_create_nests_peer_ifinfomsg() -> None:
    req = nl.veth_create("eth0", 1500, "vh1", 7, gso_bytes=nl.BIG_TCP_BYTES)
    # IFLA_GSO_IPV4_MAX_SIZE (63), IFLA_GRO_IPV4_MAX_SIZE (64): 524280 on both ends
    big = "0800 3f00 f8ff0700" + "0800 4000 f8ff0700"
    peer = IFINFO_ANY + "0800 0300 76683100" + "0800 0400 dc050000" + "0800 1c00 07000000" + big
    peer_attr = "3c00 0100" + peer  # VETH_INFO_PEER: 4 + 16 + 24 + 16 = 60
    data = "4000 0200" + peer_attr  # IFLA_INFO_DATA: 64
    kind = "0900 0100 76657468 00 000000"  # IFLA_INFO_KIND "veth"
    linkinfo = "5000 1200" + kind + data  # IFLA_LINKINFO: 4 + 12 + 64 = 80
    body = IFINFO_ANY + "0900 0300 65746830 00 000000" + "0800 0400 dc050000" + big + linkinfo
    assert req == nl.Request(nl.RTM_NEWLINK, CREATE, h(body))


def test_addr_add_with_broadcast() -> None:
    req = nl.addr_add(3, "10.0.0.2", 24)
    body = "02 18 00 00 03000000" + "0800 0200 0a000002" + "0800 0100 0a000002"
    assert req == nl.Request(nl.RTM_NEWADDR, CREATE, h(body + "0800 0400 0a0000ff"))


def test_addr_add_point_to_point_has_no_broadcast() -> None:
    body = "02 1f 00 00 03000000" + "0800 0200 0a000002" + "0800 0100 0a000002"
    assert nl.addr_add(3, "10.0.0.2", 31).body == h(body)


def test_default_route() -> None:
    req = nl.default_route("10.0.0.1", 3)
    # rtmsg: AF_INET, /0, main table (254), RTPROT_BOOT, universe, unicast
    body = "02 00 00 00 fe 03 00 01 00000000" + "0800 0500 0a000001" + "0800 0400 03000000"
    assert req == nl.Request(nl.RTM_NEWROUTE, CREATE, h(body))


def _tbf_parms(rate32: str, limit: str, ticks: str) -> str:
    rate = "00 01 0000 ffff 0000" + rate32  # ethernet link layer, cell_align -1
    return rate + "00" * 12 + limit + ticks + "00000000"


def test_tbf_add_32_bit_rate() -> None:
    req = nl.tbf_add(4, 1_000_000, 16384, 16384)
    tcmsg = "00 000000 04000000 00000000 ffffffff 00000000"  # parent TC_H_ROOT
    # buffer: 16384 B at 1 MB/s = 16.384 ms = 256000 ticks of 64 ns (0x3e800)
    parms = "2800 0100" + _tbf_parms("40420f00", "00400000", "00e80300")
    options = "3400 0200" + parms + "0800 0600 00400000"  # + TCA_TBF_BURST
    assert req == nl.Request(nl.RTM_NEWQDISC, CREATE, h(tcmsg + "0800 0100 74626600" + options))


def test_tbf_add_64_bit_rate_saturates_parms_and_adds_rate64() -> None:
    rate = 5_000_000_000
    body = nl.tbf_add(4, rate, 20_000_000, 20_000_000).body
    tail = nl.attr(nl.TCA_TBF_RATE64, struct.pack("<Q", rate))
    assert body.endswith(tail)
    parms_at = body.index(h("2800 0100")) + 4
    assert body[parms_at + 8 : parms_at + 12] == h("ffffffff")
    options_len = struct.unpack_from("<H", body, 20 + 8)[0]
    assert options_len == 4 + 40 + 8 + 12


def test_parse_replies_splits_a_datagram() -> None:
    err = struct.pack("<i", -errno.EEXIST) + h("14000000 1000 0506 01000000 00000000")
    ack = struct.pack("<i", 0) + h("14000000 1400 0506 02000000 00000000")
    data = b"".join(
        struct.pack("<IHHII", 16 + len(p), nl.NLMSG_ERROR, 0, seq, 0) + p
        for seq, p in ((1, err), (2, ack))
    )
    assert nl.parse_replies(data) == [(2, 1, err), (2, 2, ack)]
    assert nl.parse_replies(b"") == []


def test_link_indexes_from_the_kernel() -> None:
    with nl.RtNetlink() as rt:
        assert rt.link_indexes("lo") == [socket.if_nametoindex("lo")]


def test_failed_request_raises_errno_and_socket_stays_usable() -> None:
    with nl.RtNetlink() as rt:
        with pytest.raises(OSError) as exc:
            rt.transact([nl.link_get("lo"), nl.link_get("nosuchif0")])
        assert exc.value.errno == errno.ENODEV
        assert rt.link_indexes("lo", "lo") == [socket.if_nametoindex("lo")] * 2


def test_bridge_create_and_link_delete() -> None:
    req = nl.bridge_create("jb0", 1500)
    assert (req.type, req.flags) == (nl.RTM_NEWLINK, CREATE)
    assert req.body == h(IFINFO_ANY) + h("0800 0300 6a623000") + h("0800 0400 dc050000") + h(
        "1000 1200 0b00 0100 62726964 676500 00"
    )
    assert nl.link_delete(7) == nl.Request(
        nl.RTM_DELLINK, 0x5, h("00 00 0000 07000000 00000000 00000000")
    )


def test_link_info_reads_ifla_ifname_among_other_attributes() -> None:
    payload = h(IFINFO_ANY) + nl.attr(nl.IFLA_MTU, b"\0" * 4) + nl.attr(nl.IFLA_IFNAME, b"lo\0")
    assert nl.link_info(payload).name == "lo"
    assert nl.link_info(h(IFINFO_ANY)).name == ""


def test_link_names_dump_from_the_kernel() -> None:
    with nl.RtNetlink() as rt:
        names = rt.link_names()
        assert "lo" in names and len(names) == len(socket.if_nameindex())
        assert rt.link_indexes("lo") == [socket.if_nametoindex("lo")]  # still in step


def test_veth_create_without_gso_size_leaves_the_kernel_default() -> None:
    req = nl.veth_create("eth0", 1500, "vh1", 7)
    assert b"\x3f\x00" not in req.body and len(req.body) == 16 + 12 + 8 + 4 + 12 + 4 + 4 + 16 + 24


def test_link_info_reads_name_index_and_gso_size() -> None:
    ifinfo = "00 00 0000 09000000 00000000 00000000"
    payload = h(ifinfo + "0c00 0300 65746831 3000 0000" + "0800 3f00 00000100")
    assert nl.link_info(payload) == nl.LinkInfo(9, "eth10", 65536)
    assert nl.link_info(h(ifinfo + "0800 0300 6c6f0000")).gso_ipv4_max is None


def test_route_devices_reads_oif_and_multipath_hops() -> None:
    rtmsg = "02 00 00 00 fe 03 00 01 00000000"
    assert nl.route_devices(h(rtmsg + "0800 0400 03000000")) == [3]
    # RTA_MULTIPATH(9) { rtnexthop(len 8, ifindex 4), rtnexthop(len 8, ifindex 6) }
    hops = "1400 0900" + "0800 00 00 04000000" + "0800 00 00 06000000"
    assert nl.route_devices(h(rtmsg + hops)) == [4, 6]
    assert nl.route_devices(h(rtmsg)) == []
