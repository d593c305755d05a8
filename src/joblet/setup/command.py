"""What `joblet setup` and `joblet certs issue` do, as functions the CLI calls.

`run_setup` decides everything (names, addresses, which files it would
replace) before it writes anything, so a refused set-up leaves no trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from joblet.config.host_disk import disk_total_under
from joblet.config.host_memory import read_mem_total
from joblet.config.loader import load_daemon_config
from joblet.config.model import RootLayout, SecurityConfig
from joblet.errors import ConfigError
from joblet.security import certs
from joblet.security.roles import Role, parse_role
from joblet.setup import cert_registry, neighbours
from joblet.setup.cert_registry import IssuedCert
from joblet.setup.config_files import (
    WILDCARD_ADDRESSES,
    NodeEntry,
    client_address,
    dump_yaml,
    parse_rnx_nodes,
    render_daemon_config,
    render_node_snippet,
    render_rnx_config,
    render_rnx_nodes,
)
from joblet.setup.layout import (
    PRIVATE_MODE,
    PUBLIC_MODE,
    SetupError,
    create_layout,
    read_text,
    refuse_existing,
    write_file,
)
from joblet.setup.node_id import choose_node_id, new_node_id, read_node_id, write_node_id
from joblet.setup.ranges import OtherDaemon, Placement, PlacementRequest, decide_placement
from joblet.ui.config import UI_CLIENTS_FILE

SETUP_HELP = (
    "Create the directory layout under --root, a CA, a server certificate and admin "
    "and viewer client certificates, and write config/joblet-config.yml (daemon) and "
    "config/rnx-config.yml (client; nodes 'default' = admin, 'viewer' = viewer). "
    "Existing keys and configs are kept unless --force is given."
)
CERTS_ISSUE_HELP = (
    "Issue a client certificate signed by the CA under --root and print it as an "
    "rnx-config.yml node entry (paste it under 'nodes:')."
)
RUN_SETUP_HINT = "run `joblet setup` first"


@dataclass(frozen=True)
class SetupFiles:
    """Where set-up writes, all under the layout's config directory."""

    ca_cert: Path
    ca_key: Path
    daemon_config: Path
    rnx_config: Path

    @classmethod
    def of(cls, layout: RootLayout) -> SetupFiles:
        c = layout.config
        return cls(
            c / "ca-cert.pem", c / "ca-key.pem", c / "joblet-config.yml", c / "rnx-config.yml"
        )

    def all(self) -> tuple[Path, ...]:
        return (self.ca_key, self.ca_cert, self.daemon_config, self.rnx_config)


@dataclass(frozen=True)
class SetupResult:
    layout: RootLayout
    files: SetupFiles
    server_names: tuple[str, ...]  # SANs of the server certificate
    client_address: str  # what rnx-config.yml's nodes dial
    created_dirs: tuple[Path, ...]
    placement: Placement

    def summary(self) -> str:
        """A few lines for the CLI to print."""
        return "\n".join(
            [
                f"joblet set up under {self.layout.root}",
                f"  daemon config: {self.files.daemon_config}",
                f"  rnx config:    {self.files.rnx_config} (nodes: default, viewer)",
                f"  server names:  {', '.join(self.server_names)}",
                f"  clients dial:  {self.client_address}",
                f"  cgroup parent: {self.placement.cgroup_parent}",
                f"  networks:      bridge {self.placement.bridge_cidr}, "
                f"isolated {self.placement.isolated_pool}",
            ]
        )


@dataclass(frozen=True)
class Surroundings:
    """How set-up learns what else is on the host (replaced in tests)."""

    host_networks: Callable[[], list[str]] = neighbours.host_networks
    other_daemons: Callable[[Path], list[OtherDaemon]] = neighbours.other_daemons
    current: Callable[[str], OtherDaemon | None] = neighbours.read_daemon
    draw_node_id: Callable[[], str] = new_node_id


ASK_NOTHING = PlacementRequest()
HOST = Surroundings()


def run_setup(
    root: Path,
    address: str,
    port: int,
    server_names: list[str],
    force: bool,
    *,
    asked: PlacementRequest = ASK_NOTHING,
    surroundings: Surroundings = HOST,
    ca: certs.CertKeyPair | None = None,
) -> SetupResult:
    """Create `root`'s layout, certificates and both config files; the
    certificates from `ca` (a cluster's CA, see `read_ca`), else a new CA."""
    if not 1 <= port <= 65535:
        raise SetupError(f"port {port} is out of range 1-65535")
    layout = RootLayout(root)
    files = SetupFiles.of(layout)
    sans = _server_names(address, server_names)
    refuse_existing(files.all(), force)
    others = surroundings.other_daemons(root)
    placement = decide_placement(
        str(root), asked, surroundings.current(str(root)), surroundings.host_networks(), others
    )
    current_id = read_node_id(layout)
    node_id = choose_node_id(current_id, [o.node_id for o in others], surroundings.draw_node_id)
    created = create_layout(layout)
    if node_id != current_id:
        write_node_id(layout, node_id)
    ca = ca or certs.generate_ca()
    server = certs.issue_server_cert(ca.cert_pem, ca.key_pem, sans)
    dial = client_address(address, port, server_names)
    security = SecurityConfig(server.cert_pem, server.key_pem, ca.cert_pem)
    nodes = {
        "default": _node(ca, Role.ADMIN, "admin", dial),
        "viewer": _node(ca, Role.VIEWER, "viewer", dial),
    }
    write_file(files.ca_key, ca.key_pem, PRIVATE_MODE)
    write_file(files.ca_cert, ca.cert_pem, PUBLIC_MODE)
    write_file(
        files.daemon_config,
        render_daemon_config(
            root,
            address,
            port,
            security,
            placement,
            mem_total=read_mem_total(),
            disk_total=disk_total_under(root),
        ),
        PRIVATE_MODE,
    )
    write_file(files.rnx_config, render_rnx_config(nodes), PRIVATE_MODE)
    # The web UI's own certificates, one per role: it calls the daemon with
    # the one of each browser session's role.
    ui_nodes = {
        "admin": _node(ca, Role.ADMIN, "ui-admin", dial),
        "viewer": _node(ca, Role.VIEWER, "ui-viewer", dial),
    }
    write_file(layout.config / UI_CLIENTS_FILE, render_rnx_config(ui_nodes), PRIVATE_MODE)
    named = [(nodes["default"], Role.ADMIN, "admin"), (nodes["viewer"], Role.VIEWER, "viewer"),
             (ui_nodes["admin"], Role.ADMIN, "ui-admin"),
             (ui_nodes["viewer"], Role.VIEWER, "ui-viewer")]  # fmt: skip
    issued = [cert_registry.entry_for(entry.cert, role, cn) for entry, role, cn in named]
    # A new CA: the old index and CRL speak of certificates it never issued.
    cert_registry.record_issued(layout, issued, fresh=True)
    return SetupResult(layout, files, tuple(sans), dial, tuple(created), placement)


def read_ca(cert_path: Path, key_path: Path) -> certs.CertKeyPair:
    """The CA of an existing node (its config/ca-cert.pem and ca-key.pem),
    checked before anything is written."""
    try:
        cert_pem = read_text(cert_path, "give the CA certificate of the cluster's first node")
        key_pem = read_text(key_path, "give the CA key of the cluster's first node")
        return certs.check_ca(cert_pem, key_pem)
    except ValueError as exc:  # UnicodeDecodeError too: a DER file, not PEM
        raise SetupError(f"--ca-cert {cert_path} / --ca-key {key_path}: {exc}") from exc


def _server_names(address: str, server_names: list[str]) -> list[str]:
    # A daemon bound to one specific address must be reachable (and verifiable) by it.
    extra = [] if address in WILDCARD_ADDRESSES else [address.strip("[]")]
    try:
        return certs.server_san_names([*server_names, *extra])
    except ValueError as exc:
        raise SetupError(str(exc)) from exc


def _node(ca: certs.CertKeyPair, role: Role, name: str, address: str) -> NodeEntry:
    cert, key = certs.issue_client_cert(ca.cert_pem, ca.key_pem, role, name)
    return NodeEntry(address=address, cert=cert, key=key, ca=ca.cert_pem)


def issue_cert(root: Path, role: Role | str, name: str) -> tuple[str, str]:
    """A new client certificate (cert_pem, key_pem) from the CA kept under `root`."""
    known = parse_role(str(role))
    if known is None:
        raise SetupError(f"role {role!r} is not one of: {', '.join(r.value for r in Role)}")
    files = SetupFiles.of(RootLayout(root))
    ca_cert = read_text(files.ca_cert, RUN_SETUP_HINT)
    ca_key = read_text(files.ca_key, RUN_SETUP_HINT)
    try:
        cert, key = certs.issue_client_cert(ca_cert, ca_key, known, name)
    except ValueError as exc:
        raise SetupError(str(exc)) from exc
    cert_registry.record_issued(RootLayout(root), [cert_registry.entry_for(cert, known, name)])
    return cert, key


def cluster_snippet(cert_pem: str, key_pem: str) -> str:
    """What `joblet certs issue --role node` prints: the keys a daemon's
    joblet-config.yml takes under `cluster:`, ready to paste."""
    return dump_yaml({"cluster": {"nodeCert": cert_pem, "nodeKey": key_pem}})


def revoke_certs(root: Path, name: str | None, serial: str | None) -> list[IssuedCert]:
    """Revoke the certificates named `name` (or the one with `serial`) and
    write a new CRL signed by the CA under `root`."""
    files = SetupFiles.of(RootLayout(root))
    ca_cert = read_text(files.ca_cert, RUN_SETUP_HINT)
    ca_key = read_text(files.ca_key, RUN_SETUP_HINT)
    return cert_registry.revoke(RootLayout(root), ca_cert, ca_key, name=name, serial=serial)


def list_certs(root: Path) -> list[IssuedCert]:
    """Every certificate the index records, in the order issued."""
    return list(cert_registry.load_index(RootLayout(root)).certs)


def render_cert_table(entries: list[IssuedCert]) -> str:
    """What `joblet certs list` prints: one row per certificate."""
    header = ("NAME", "ROLE", "SERIAL", "NOT-AFTER", "REVOKED-AT")
    rows = [header] + [
        (c.name or "?", c.role or "?", c.serial, c.not_after or "?", c.revoked_at or "-")
        for c in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in rows
    )


def issue_node_entry(
    root: Path, role: Role | str, name: str, address: str | None = None
) -> NodeEntry:
    """A ready rnx node entry for a new client certificate.

    Without `address`, use the one set-up gave the `default` node, else the
    daemon config's listen address.
    """
    cert, key = issue_cert(root, role, name)
    files = SetupFiles.of(RootLayout(root))
    dial = address or _default_address(files)
    return NodeEntry(address=dial, cert=cert, key=key, ca=read_text(files.ca_cert, RUN_SETUP_HINT))


def node_snippet(name: str, entry: NodeEntry) -> str:
    """What `joblet certs issue` prints: the entry under `name`, ready to paste."""
    return render_node_snippet(name, entry)


def _default_address(files: SetupFiles) -> str:
    if files.rnx_config.exists():
        try:
            default = parse_rnx_nodes(files.rnx_config.read_text()).get("default", {})
        except (OSError, ValueError):
            default = {}
        if isinstance(default.get("address"), str):
            return str(default["address"])
    try:
        server = load_daemon_config(files.daemon_config).server
    except ConfigError as exc:
        raise SetupError(f"cannot tell the daemon's address ({exc}); pass an address") from exc
    return client_address(server.address, server.port, [])


def add_node(rnx_config: Path, name: str, entry: NodeEntry, force: bool) -> None:
    """Add (or with `force` replace) node `name` in an rnx-config.yml, creating it if needed."""
    if not name.strip():
        raise SetupError("node name must not be empty")
    nodes: dict[str, dict[str, object]] = {}
    if rnx_config.exists():
        try:
            nodes = parse_rnx_nodes(read_text(rnx_config, ""))
        except ValueError as exc:
            raise SetupError(f"{rnx_config} is not a valid rnx config: {exc}") from exc
    if name in nodes and not force:
        raise SetupError(f"node {name!r} already exists in {rnx_config}; use --force to replace it")
    nodes[name] = dict(entry.as_yaml_mapping())
    write_file(rnx_config, render_rnx_nodes(nodes), PRIVATE_MODE)
