"""rnx client configuration: where it is found and what a node looks like.

The file maps node names to connection settings; PEM text is embedded, or named
by a path relative to the config file:

    nodes:
      default:
        address: "127.0.0.1:50051"
        cert: |            # client certificate (PEM), or certFile: client.pem
          -----BEGIN CERTIFICATE-----
        key: |             # client private key (PEM), or keyFile: client-key.pem
          -----BEGIN PRIVATE KEY-----
        ca: |              # CA certificate (PEM), or caFile: ca.pem
          -----BEGIN CERTIFICATE-----
        serverName: joblet # optional: the name to expect in the server certificate

A top-level `nodeTimeout: 3s` sets how long each node may take to answer
when a command asks several (`--node a,b`, `--node all`).

Discovery order: --config FILE, $RNX_CONFIG, ./rnx-config.yml,
~/.rnx/rnx-config.yml, /opt/joblet/config/rnx-config.yml. An explicitly named
file (flag or variable) must exist: falling back to another file would silently
talk to a different daemon.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from joblet.client.errors import ClientConfigError
from joblet.client.plain_yaml import parse_plain_yaml

CONFIG_NAME = "rnx-config.yml"
SYSTEM_CONFIG = Path("/opt/joblet/config") / CONFIG_NAME
DEFAULT_NODE = "default"
ENV_VAR = "RNX_CONFIG"

# (embedded PEM key, file path key, what it is) for the three credentials.
_PEM_FIELDS = (
    ("cert", "certFile", "client certificate"),
    ("key", "keyFile", "client private key"),
    ("ca", "caFile", "CA certificate"),
)


@dataclass(frozen=True)
class NodeConfig:
    """How to reach one joblet daemon."""

    name: str
    address: str  # host:port
    cert: str  # client certificate chain, PEM
    key: str  # client private key, PEM
    ca: str  # CA certificate(s) that signed the server, PEM
    server_name: str = ""  # overrides the TLS target name when set


@dataclass(frozen=True)
class RnxConfig:
    """The config file; each node is validated when it is used, so that one
    malformed node does not keep the others from working."""

    path: Path
    raw_nodes: Mapping[str, object]
    node_timeout_s: float | None = None  # nodeTimeout: per node, asking several

    @property
    def names(self) -> list[str]:
        return sorted(self.raw_nodes)

    def node(self, name: str) -> NodeConfig:
        if name not in self.raw_nodes:
            available = ", ".join(self.names) or "none"
            raise ClientConfigError(
                f"node {name!r} is not in {self.path} (available nodes: {available})"
            )
        return parse_node(name, self.raw_nodes[name], self.path.parent, self.path)

    def exposed_key_warning(self, mode: int) -> str:
        """A warning when the file (permission bits `mode`) is readable by
        every user and holds a private key; '' otherwise."""
        if not mode & 0o004:
            return ""
        holding = [
            name
            for name, body in self.raw_nodes.items()
            if isinstance(body, Mapping) and body.get("key")
        ]
        if not holding:
            return ""
        return (
            f"warning: {self.path} is readable by every user and holds the private key of"
            f" node {', '.join(sorted(holding))}; run 'chmod 600 {self.path}'"
        )

    @property
    def nodes(self) -> dict[str, NodeConfig]:
        """Every node, validated (the first malformed one raises)."""
        return {name: self.node(name) for name in self.names}


def search_paths(cwd: Path, home: Path, system: Path = SYSTEM_CONFIG) -> tuple[Path, ...]:
    """The implicit places a config is looked for, in order."""
    return (cwd / CONFIG_NAME, home / ".rnx" / CONFIG_NAME, system)


def find_config_path(
    explicit: str | None,
    env: Mapping[str, str],
    cwd: Path,
    home: Path,
    system: Path = SYSTEM_CONFIG,
) -> Path:
    """Pick the config file to use, or explain where we looked."""
    for origin, named in (("--config", explicit), (f"${ENV_VAR}", env.get(ENV_VAR))):
        if named:
            path = Path(named).expanduser()
            if not path.is_file():
                raise ClientConfigError(f"config file {path} (from {origin}) does not exist")
            return path
    candidates = search_paths(cwd, home, system)
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise ClientConfigError(
        f"no rnx config found (looked in {looked}); pass --config FILE or set ${ENV_VAR}"
    )


def load_rnx_config(path: Path) -> RnxConfig:
    """Read and validate a config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ClientConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ClientConfigError(f"config {path} is not valid YAML: {exc}") from exc
    raw = parse_plain_yaml(text)  # the files `joblet setup` writes, without PyYAML
    return parse_rnx_config(_load_yaml(text, path) if raw is None else raw, path)


def _load_yaml(text: str, path: Path) -> object:
    import yaml  # imported here: only configs beyond the plain subset pay for it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClientConfigError(f"config {path} is not valid YAML: {first_line}") from exc


def parse_rnx_config(raw: object, path: Path) -> RnxConfig:
    """Validate the parsed YAML of `path`; file-path fields are relative to it."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("nodes"), Mapping):
        raise ClientConfigError(f"config {path} must have a 'nodes:' mapping")
    nodes_raw: Mapping[object, object] = raw["nodes"]
    if not nodes_raw:
        raise ClientConfigError(f"config {path} defines no nodes")
    return RnxConfig(
        path=path,
        raw_nodes={str(name): body for name, body in nodes_raw.items()},
        node_timeout_s=_node_timeout(raw.get("nodeTimeout"), path),
    )


def _node_timeout(raw: object, path: Path) -> float | None:
    """`nodeTimeout`: seconds (a number) or "3s", "500ms"."""
    if raw is None:
        return None
    text = str(raw).strip()
    scale = 1.0
    for suffix, factor in (("ms", 0.001), ("s", 1.0)):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    try:
        seconds = float(text) * scale
    except ValueError:
        seconds = 0.0
    if isinstance(raw, bool) or not 0 < seconds < float("inf"):
        raise ClientConfigError(
            f"config {path}: 'nodeTimeout' must be a duration above 0 (3, 3s, 500ms)"
        )
    return seconds


def parse_node(name: str, raw: object, base_dir: Path, path: Path) -> NodeConfig:
    where = f"config {path}, node {name!r}"
    if not isinstance(raw, Mapping):
        raise ClientConfigError(f"{where}: must be a mapping")
    address = raw.get("address")
    if not isinstance(address, str) or not address:
        raise ClientConfigError(f"{where}: 'address' (host:port) is required")
    check_address(address, where)
    cert, key, ca = (_read_pem(raw, field, base_dir, where) for field in _PEM_FIELDS)
    server_name = raw.get("serverName", "") or ""
    if not isinstance(server_name, str):
        raise ClientConfigError(f"{where}: 'serverName' must be a string")
    return NodeConfig(name, address, cert=cert, key=key, ca=ca, server_name=server_name)


def check_address(address: str, where: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClientConfigError(f"{where}: address {address!r} is not host:port")


def _read_pem(
    raw: Mapping[str, object], field: tuple[str, str, str], base_dir: Path, where: str
) -> str:
    key, file_key, what = field
    text = raw.get(key)
    source = f"'{key}'"
    if not text and raw.get(file_key):
        file_path = base_dir / str(raw[file_key])
        source = f"'{file_key}' ({file_path})"
        try:
            text = file_path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ClientConfigError(f"{where}: cannot read {what} from {file_path}: {exc}") from exc
    if not text:
        raise ClientConfigError(f"{where}: the {what} is missing (set '{key}' or '{file_key}')")
    if not isinstance(text, str) or "-----BEGIN " not in text:
        raise ClientConfigError(f"{where}: {source} does not hold a PEM {what}")
    return text
