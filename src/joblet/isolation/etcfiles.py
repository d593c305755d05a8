"""Text of the generated /etc files of a job: pure functions."""

from __future__ import annotations

from collections.abc import Mapping

FALLBACK_NAMESERVERS = ("8.8.8.8", "1.1.1.1")


def render_hostname(hostname: str) -> str:
    return hostname + "\n"


def render_hosts(hostname: str, extra_hosts: Mapping[str, str]) -> str:
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"127.0.1.1\t{hostname}",
    ]
    lines += [f"{address}\t{name}" for name, address in sorted(extra_hosts.items())]
    return "\n".join(lines) + "\n"


def host_nameservers(resolv_conf: str) -> list[str]:
    """Nameservers of the host's resolv.conf a job can reach: loopback ones are
    skipped because the job's loopback is its own (a host stub resolver such as
    systemd-resolved at 127.0.0.53 is not there)."""
    servers: list[str] = []
    for line in resolv_conf.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            addr = fields[1]
            if not addr.startswith("127.") and addr != "::1":
                servers.append(addr)
    return servers


def search_domains(resolv_conf: str) -> list[str]:
    for line in resolv_conf.splitlines():
        fields = line.split()
        if fields and fields[0] == "search":
            return fields[1:]
    return []


def render_resolv_conf(host_resolv_conf: str) -> str:
    servers = host_nameservers(host_resolv_conf) or list(FALLBACK_NAMESERVERS)
    lines = [f"nameserver {addr}" for addr in servers]
    domains = search_domains(host_resolv_conf)
    if domains:
        lines.append("search " + " ".join(domains))
    return "\n".join(lines) + "\n"
