"""Who a caller is and what it may call: roles read from the client
certificate's subject, and the pure table of RPCs a viewer may use.

No gRPC imports here: the interceptor hands in the auth context as a plain
mapping, so all of this is testable with certificates alone.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# The keys gRPC's TLS transport uses in auth_context() for the peer's verified
# leaf certificate and for its subject as an RFC 4514 string.
PEER_CERT_KEY = "x509_pem_cert"
PEER_SUBJECT_KEY = "x509_subject"


class Role(enum.StrEnum):
    ADMIN = "admin"
    VIEWER = "viewer"
    # Another daemon of the cluster forwarding a call about a job it does not
    # own: no rights of its own, it acts for the caller it names (see
    # `delegated_caller`).
    NODE = "node"


# The roles a person or program calling a node may hold.
CLIENT_ROLES: tuple[Role, ...] = (Role.ADMIN, Role.VIEWER)


@dataclass(frozen=True)
class Caller:
    """The authenticated peer of one RPC: CN of its certificate and its role."""

    name: str
    role: Role
    via: str = ""  # the CN of the node that forwarded the call; "" = called directly


def _methods(service: str, *names: str) -> frozenset[str]:
    return frozenset(f"/joblet.{service}/{name}" for name in names)


# Read-only RPCs of the public API (v1.0.9), by full gRPC method name.
VIEWER_METHODS: frozenset[str] = (
    _methods(
        "JobService",
        "GetJobStatus",
        "ListJobs",
        "GetJobLogs",
        "StreamJobMetrics",
        "GetJobMetricsHistory",
        "GetJobMetricsSummary",
        "GetWorkflowStatus",
        "ListWorkflows",
        "GetWorkflowJobs",
        "WatchWorkflow",  # an addition: the status, streamed
        "ListJobPages",  # an addition: ListJobs in pages, filtered
    )
    | _methods("NetworkService", "ListNetworks")
    | _methods("VolumeService", "ListVolumes")
    | _methods("MonitoringService", "GetSystemStatus", "StreamSystemMetrics")
    | _methods("RuntimeService", "ListRuntimes", "GetRuntimeInfo", "ValidateRuntimeSpec")
    | _methods("ClusterService", "ListClusterNodes")  # an addition
    | _methods("GpuService", "ListGpus")  # an addition
    # an addition: a login token for the web UI, of the caller's own role
    | _methods("UiService", "CreateUiLogin")
)


# The calls a node forwards to the owner of a job (each checked again
# against the role of the caller it names).
FORWARDED_METHODS: frozenset[str] = _methods(
    "JobService",
    "GetJobLogs",
    "StreamJobMetrics",
    "GetJobMetricsHistory",
    "StopJob",
    "CancelJob",
    "DeleteJob",
)

# Metadata a forwarding node sends with the call: who it acts for.
ON_BEHALF_ROLE_KEY = "joblet-on-behalf-role"
ON_BEHALF_NAME_KEY = "joblet-on-behalf-name"


def delegated_caller(
    peer: Caller, metadata: Iterable[tuple[str, str | bytes]], method: str
) -> Caller | None:
    """Who a call really comes from. Only a node peer may name another
    caller, only for a forwarded method, and only an admin or a viewer (a
    node cannot pass on a node's rights); anyone else's metadata is ignored.
    None: a node's call that names no valid caller, which is refused."""
    if peer.role is not Role.NODE:
        return peer
    if method not in FORWARDED_METHODS:
        return None
    found: dict[str, str] = {}
    for key, value in metadata:
        if key in (ON_BEHALF_ROLE_KEY, ON_BEHALF_NAME_KEY):
            if key in found:  # two values: ambiguous, refuse rather than pick
                return None
            found[key] = value.decode(errors="replace") if isinstance(value, bytes) else value
    role = parse_role(found.get(ON_BEHALF_ROLE_KEY, ""))
    name = found.get(ON_BEHALF_NAME_KEY, "")
    if role is None or role not in CLIENT_ROLES or not name:
        return None
    return Caller(name=name, role=role, via=peer.name)


def is_allowed(role: Role | None, method: str) -> bool:
    """Admin may call anything; viewer only `VIEWER_METHODS`; a node nothing
    by itself (it acts for a caller it names); no role nothing."""
    if role is Role.ADMIN:
        return True
    if role is Role.VIEWER:
        return method in VIEWER_METHODS
    return False


def parse_role(text: str) -> Role | None:
    """The role named exactly by `text`, or None for anything else."""
    try:
        return Role(text)
    except ValueError:
        return None


def caller_from_cert_pem(pem: str | bytes) -> Caller | None:
    """The caller a certificate names, or None when its OU is not exactly one known role."""
    return _caller_from_pem_bytes(pem.encode() if isinstance(pem, str) else pem)


# Every call presents its peer's certificate; parsing it each time costs more
# than the RPC itself. A certificate's bytes always name the same caller.
@functools.lru_cache(maxsize=1024)
def _caller_from_pem_bytes(data: bytes) -> Caller | None:
    # Imported here: the daemon reads the subject gRPC already parsed (see
    # caller_from_auth_context) and so never pays for loading cryptography.
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        subject = x509.load_pem_x509_certificate(data).subject
    except ValueError:
        return None

    def values(oid: x509.ObjectIdentifier) -> list[str]:
        return [str(attr.value) for attr in subject.get_attributes_for_oid(oid)]

    return _caller(values(NameOID.COMMON_NAME), values(NameOID.ORGANIZATIONAL_UNIT_NAME))


def _caller(names: list[str], units: list[str]) -> Caller | None:
    # Several OUs would make the role ambiguous: deny rather than pick one.
    if len(units) != 1:
        return None
    role = parse_role(units[0])
    if role is None:
        return None
    return Caller(name=names[0] if names else "", role=role)


@functools.lru_cache(maxsize=1024)
def caller_from_subject(subject: str) -> Caller | None:
    """The caller an RFC 4514 subject ("CN=alice,OU=admin,O=joblet") names."""
    try:
        pairs = parse_subject(subject)
    except ValueError:
        return None
    names = [value for key, value in pairs if key.upper() == "CN"]
    units = [value for key, value in pairs if key.upper() == "OU"]
    return _caller(names, units)


def parse_subject(text: str) -> list[tuple[str, str]]:
    """RFC 4514 distinguished name -> [(type, value)]; `+` (multi-valued RDNs)
    and `,` both separate attributes; backslash escapes (`\\,` and `\\2C`) are
    undone. Raises ValueError on malformed text."""
    pairs: list[tuple[str, str]] = []
    raw = bytearray()
    key: str | None = None
    i = 0
    while i <= len(text):
        ch = text[i] if i < len(text) else ","
        if ch == "\\" and i + 1 < len(text):
            i = _unescape(text, i, raw)
            continue
        if ch == "=" and key is None:
            key, raw = raw.decode().strip(), bytearray()
        elif ch in ",+":
            if key is None:
                raise ValueError(f"attribute without '=' in {text!r}")
            pairs.append((key, raw.decode()))
            key, raw = None, bytearray()
        else:
            raw += ch.encode()
        i += 1
    return pairs


def _unescape(text: str, i: int, raw: bytearray) -> int:
    """Append the character escaped at text[i] (a backslash); return the next index."""
    pair = text[i + 1 : i + 3]
    if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
        raw.append(int(pair, 16))
        return i + 3
    raw += text[i + 1].encode()
    return i + 2


def role_from_cert_pem(pem: str | bytes) -> Role | None:
    caller = caller_from_cert_pem(pem)
    return caller.role if caller else None


def caller_from_auth_context(auth_context: Mapping[str, Iterable[bytes]]) -> Caller | None:
    """The caller of a gRPC call, from `ServicerContext.auth_context()`."""
    subject = next(iter(auth_context.get(PEER_SUBJECT_KEY) or ()), None)
    if subject is not None:
        return caller_from_subject(subject.decode(errors="replace"))
    # Without require_client_auth there may be no peer certificate at all.
    first = next(iter(auth_context.get(PEER_CERT_KEY) or ()), None)
    return None if first is None else caller_from_cert_pem(first)


def role_from_auth_context(auth_context: Mapping[str, Iterable[bytes]]) -> Role | None:
    caller = caller_from_auth_context(auth_context)
    return caller.role if caller else None
