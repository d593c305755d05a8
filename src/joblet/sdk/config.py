"""Where the SDK finds its node: the same places as rnx ($RNX_CONFIG first),
or explicit arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from joblet.client.config import DEFAULT_NODE, find_config_path, load_rnx_config
from joblet.client.errors import CliError
from joblet.sdk.errors import JobletException

DEFAULT_PORT = 50051


@dataclass(frozen=True)
class Endpoint:
    """A node's address and the client's mTLS material (PEM bytes)."""

    address: str
    ca: bytes
    cert: bytes
    key: bytes
    server_name: str = ""  # the TLS name to expect, when not the address's host

    def channel_options(self) -> list[tuple[str, str | int]]:
        from joblet.client.connection import MAX_MESSAGE_BYTES

        options: list[tuple[str, str | int]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        return options


def _pem(value: str | bytes | Path | None, what: str) -> bytes:
    """PEM text as given, or read from a path."""
    if value is None:
        raise JobletException(f"no {what}: give it, or a config file with the node")
    if isinstance(value, bytes):
        return value
    if isinstance(value, str) and "-----BEGIN" in value:
        return value.encode()
    try:
        return Path(value).read_bytes()
    except OSError as exc:
        raise JobletException(f"cannot read the {what} {value}: {exc.strerror}") from exc


def resolve(
    node: str | None = None,
    *,
    config: str | os.PathLike[str] | None = None,
    address: str | None = None,
    ca: str | bytes | Path | None = None,
    cert: str | bytes | Path | None = None,
    key: str | bytes | Path | None = None,
) -> Endpoint:
    """An explicit address with its certificates, else `node` (default:
    "default") from the config file rnx would read."""
    if address is not None:
        return Endpoint(address, _pem(ca, "CA certificate"), _pem(cert, "client certificate"),
                        _pem(key, "client key"))  # fmt: skip
    try:
        path = find_config_path(
            os.fspath(config) if config is not None else None,
            os.environ, Path.cwd(), Path.home(),
        )  # fmt: skip
        entry = load_rnx_config(path).node(node or DEFAULT_NODE)
    except CliError as exc:
        raise JobletException(str(exc)) from exc
    return Endpoint(
        entry.address,
        ca if isinstance(ca, bytes) else entry.ca.encode() if ca is None else _pem(ca, "CA"),
        entry.cert.encode() if cert is None else _pem(cert, "client certificate"),
        entry.key.encode() if key is None else _pem(key, "client key"),
        entry.server_name,
    )
