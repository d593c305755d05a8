"""The `ui:` section of the daemon config, and what `joblet ui` is allowed to do
with it. Standard library only: the daemon reads this section too.

ui:
  enabled: false           # true: `joblet serve` starts and supervises `joblet ui`
  listen: 127.0.0.1:5175   # a non-loopback address needs tls: true
  tls: false               # HTTPS with the server certificate of `joblet setup`
  hosts: []                # Host names browsers use besides the listen address
  user: nobody             # the process drops to this user after binding
  clients: ""              # rnx config, nodes admin + viewer (ROOT/config/ui-clients.yml)
  publicUrl: ""            # the URL `rnx ui` prints (default: from listen)
  nodes: {}                # more nodes to switch to: NAME: their ui-clients.yml
  maxUploadBytes: 33554432 # the run form's files together, at most
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joblet.config.keys import Schema, unknown_keys
from joblet.errors import ConfigError

KEYS: Schema = dict.fromkeys(
    ("enabled", "listen", "tls", "hosts", "user", "clients", "publicUrl", "nodes", "maxUploadBytes")
)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5175
LOOPBACK_NAMES = ("localhost",)
LOCAL_NODE = "local"  # the node whose config the UI was started with
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
DEFAULT_MAX_UPLOAD = 32 * 1024 * 1024


@dataclass(frozen=True)
class UiConfig:
    enabled: bool = False
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tls: bool = False
    hosts: tuple[str, ...] = ()
    user: str = "nobody"
    clients: Path | None = None
    public_url: str = ""
    nodes: tuple[tuple[str, Path], ...] = ()
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def url(self) -> str:
        """Where browsers reach the UI (publicUrl, else the listen address)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"

    def allowed_hosts(self) -> frozenset[str]:
        """Host header names accepted (lower case, no port): the listen
        address, loopback names for a loopback listen, and `hosts`."""
        names = {self.host.lower(), *(h.lower() for h in self.hosts)}
        if is_loopback(self.host):
            names |= {"127.0.0.1", "localhost", "::1"}
        if self.public_url:
            from urllib.parse import urlsplit

            names.add((urlsplit(self.public_url).hostname or "").lower())
        return frozenset(n for n in names if n)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen_problem(config: UiConfig) -> str | None:
    """Why the UI must not start with this config, or None."""
    if not is_loopback(config.host) and not config.tls:
        return (
            f"ui.listen {config.host}:{config.port} is not a loopback address: "
            "set ui.tls: true (HTTPS with the server certificate) or listen on 127.0.0.1"
        )
    return None


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise ConfigError(f"ui.listen {text!r} must be HOST:PORT")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 1 <= number <= 65535:
        raise ConfigError(f"ui.listen {text!r}: the port must be 1-65535")
    return host.strip("[]"), number


def parse_ui_config(section: Mapping[str, Any] | None, root: Path) -> UiConfig:
    """The `ui:` mapping (None: all defaults); raises ConfigError."""
    data = dict(section or {})
    problems = unknown_keys(data, KEYS, "ui")
    if problems:
        raise ConfigError("; ".join(problems))
    for name in ("enabled", "tls"):
        if not isinstance(data.get(name, False), bool):
            raise ConfigError(f"ui.{name} must be true or false")
    host, port = parse_listen(str(data.get("listen", f"{DEFAULT_HOST}:{DEFAULT_PORT}")))
    hosts = data.get("hosts") or []
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ConfigError("ui.hosts must be a list of host names")
    for name in ("user", "clients", "publicUrl"):
        if not isinstance(data.get(name, ""), str):
            raise ConfigError(f"ui.{name} must be a string")
    clients = str(data.get("clients") or "")
    upload = data.get("maxUploadBytes", DEFAULT_MAX_UPLOAD)
    if isinstance(upload, bool) or not isinstance(upload, int) or upload < 1:
        raise ConfigError("ui.maxUploadBytes must be a positive whole number of bytes")
    return UiConfig(
        enabled=bool(data.get("enabled", False)),
        host=host,
        port=port,
        tls=bool(data.get("tls", False)),
        hosts=tuple(hosts),
        user=str(data.get("user") or "nobody"),
        clients=Path(clients) if clients else root / "config" / UI_CLIENTS_FILE,
        public_url=str(data.get("publicUrl") or ""),
        nodes=parse_nodes(data.get("nodes")),
        max_upload_bytes=upload,
    )


def parse_nodes(raw: Any) -> tuple[tuple[str, Path], ...]:
    """`ui.nodes`: NAME -> the ui-clients.yml of that node (its admin and
    viewer certificates), in the file's order."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ConfigError("ui.nodes must map node names to their ui-clients.yml")
    nodes = []
    for name, path in raw.items():
        if not isinstance(name, str) or not NODE_NAME.fullmatch(name) or name == LOCAL_NODE:
            raise ConfigError(
                f"ui.nodes: {name!r} is not a node name "
                f"(letters, digits, . _ -; not {LOCAL_NODE!r})"
            )
        if not isinstance(path, str) or not path.strip():
            raise ConfigError(f"ui.nodes.{name} must be the path of that node's ui-clients.yml")
        nodes.append((name, Path(path)))
    return tuple(nodes)


UI_CLIENTS_FILE = "ui-clients.yml"
LOGIN_KEY_FILE = "ui-login.key"


def login_key_path(root: Path) -> Path:
    return root / "config" / LOGIN_KEY_FILE


def load_ui_config(path: Path) -> tuple[UiConfig, Any]:
    """The `ui:` section of a daemon config file and the whole daemon config."""
    from joblet.config.loader import load_daemon_config

    config = load_daemon_config(path)
    return config.ui, config
