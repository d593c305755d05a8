"""The services of the test's "outside" network namespace (stdlib only).

Run as `unshare --net python3 outside_services.py`: it puts its addresses
on its own loopback (the test adds the veth to the daemon's namespace) and
serves:
  SERVER:8080  TCP, answers each connection with the peer's address (what NAT shows)
  SERVER:9999  UDP, records each datagram's source and payload
  SERVER:8081  TCP, answers with a JSON report of what the DNS and 9999 saw
  SERVER:8082  TCP, reads until the peer shuts its side, answers the byte count
  DNS:53       UDP, one A record per name in NAMES, NXDOMAIN else; bound to
               its own address so that replies come from it (a resolver
               drops answers from any other)
It prints "ready" once every socket is bound.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable

SERVER, DNS = "198.51.100.1", "198.51.100.53"  # TEST-NET-2
NAMES = {"outside.test": SERVER}
DNS_HEADER = struct.Struct("!HHHHHH")  # id, flags, qd, an, ns, ar counts
seen: dict[str, list[list[str]]] = {"dns": [], "udp": []}


def question(packet: bytes) -> tuple[str, int, int]:
    """The first question's name, type and the offset just after it."""
    labels, offset = [], DNS_HEADER.size
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype = struct.unpack_from("!H", packet, offset + 1)[0]
    return ".".join(labels).lower(), qtype, offset + 5


def answer(packet: bytes) -> bytes:
    ident = DNS_HEADER.unpack_from(packet)[0]
    name, qtype, end = question(packet)
    address = NAMES.get(name)
    if address is None:  # NXDOMAIN
        return DNS_HEADER.pack(ident, 0x8183, 1, 0, 0, 0) + packet[DNS_HEADER.size : end]
    if qtype != 1:  # the name exists, but has no record of this type
        return DNS_HEADER.pack(ident, 0x8180, 1, 0, 0, 0) + packet[DNS_HEADER.size : end]
    record = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(address)
    return DNS_HEADER.pack(ident, 0x8180, 1, 1, 0, 0) + packet[DNS_HEADER.size : end] + record


def serve_dns(sock: socket.socket) -> None:
    while True:
        packet, peer = sock.recvfrom(512)
        try:
            reply = answer(packet)
            seen["dns"].append([peer[0], question(packet)[0]])
        except (IndexError, struct.error):
            continue
        sock.sendto(reply, peer)


def serve_udp_recorder(sock: socket.socket) -> None:
    while True:
        payload, peer = sock.recvfrom(2048)
        seen["udp"].append([peer[0], payload.decode("ascii", "replace")])


def serve_tcp(sock: socket.socket, reply: object) -> None:
    while True:
        conn, peer = sock.accept()
        with conn:
            text = peer[0] if reply == "peer" else json.dumps(seen)
            conn.sendall(text.encode())


def serve_sink(sock: socket.socket) -> None:
    while True:
        conn, _ = sock.accept()
        with conn:
            total = 0
            while chunk := conn.recv(1 << 20):
                total += len(chunk)
            conn.sendall(str(total).encode())


def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for address in (SERVER, DNS):
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind((DNS, 53))
    recorder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    recorder.bind((SERVER, 9999))
    peer_server = socket.create_server((SERVER, 8080))
    report_server = socket.create_server((SERVER, 8081))
    sink_server = socket.create_server((SERVER, 8082))
    workers: list[tuple[Callable[..., None], tuple[object, ...]]] = [
        (serve_dns, (dns,)),
        (serve_udp_recorder, (recorder,)),
        (serve_tcp, (peer_server, "peer")),
        (serve_tcp, (report_server, "report")),
        (serve_sink, (sink_server,)),
    ]
    for target, args in workers:
        threading.Thread(target=target, args=args, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or kills us)


if __name__ == "__main__":
    main()
