"""What every command handler receives: parsed arguments, streams, and a way to
reach the selected node. grpc is imported only when a handler connects."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from joblet.cli.output import message_to_json
from joblet.cli.terminal import escape_text
from joblet.client.config import (
    DEFAULT_NODE,
    NodeConfig,
    RnxConfig,
    find_config_path,
    load_rnx_config,
)

if TYPE_CHECKING:
    import grpc
    from google.protobuf.message import Message

    from joblet.client.connection import ChannelFactory, JobClient


NODE_ENV = "RNX_NODE"


@dataclass(frozen=True)
class CommandContext:
    args: argparse.Namespace
    out: TextIO
    err: TextIO
    env: Mapping[str, str]
    cwd: Path
    home: Path
    channel_factory: ChannelFactory | None = None  # None: mutual TLS from the config

    @property
    def json(self) -> bool:
        """Output as JSON: --json, or --json-compat (rnx's shape where the
        reference prints none)."""
        return bool(getattr(self.args, "json", False)) or self.json_compat

    @property
    def json_compat(self) -> bool:
        return bool(getattr(self.args, "json_compat", False))

    @property
    def node_name(self) -> str:
        """--node, else $RNX_NODE, else the config's default node."""
        return getattr(self.args, "node", None) or self.env.get(NODE_ENV) or DEFAULT_NODE

    def load_config(self) -> RnxConfig:
        path = find_config_path(getattr(self.args, "config", None), self.env, self.cwd, self.home)
        config = load_rnx_config(path)
        try:
            warning = config.exposed_key_warning(path.stat().st_mode)
        except OSError:
            warning = ""
        if warning:
            self.report(warning)
        return config

    @property
    def many_nodes(self) -> bool:
        """--node names several nodes (`a,b` or `all`)."""
        from joblet.cli.node_select import names_many

        return names_many(self.node_name)

    def node_names(self, config: RnxConfig) -> list[str]:
        """The nodes --node names, checked against `config`."""
        from joblet.cli.node_select import expand

        return expand(self.node_name, config.names)

    def node_timeout_s(self, config: RnxConfig) -> float:
        from joblet.cli.node_select import node_timeout

        return node_timeout(getattr(self.args, "node_timeout", None), config.node_timeout_s)

    def node(self) -> NodeConfig:
        """The one selected node; commands that change something get here,
        and refuse a --node that names several."""
        if self.many_nodes:
            from joblet.cli.node_select import one_node_only

            raise one_node_only("this command", self.node_name)
        return self.load_config().node(self.node_name)

    @contextmanager
    def job_client(self) -> Iterator[JobClient]:
        """A client for the selected node; the channel is closed on exit."""
        from joblet.client.connection import JobClient

        node = self.node()
        channel = self.open_channel(node)
        try:
            yield JobClient(channel, node.address)
        finally:
            channel.close()

    def open_channel(self, node: NodeConfig, timeout_s: float | None = None) -> grpc.Channel:
        """A connected channel to `node` (mutual TLS, or the test factory),
        waiting at most `timeout_s` (default --timeout) for it; CliError
        naming why it failed."""
        from joblet.client.connect import connect
        from joblet.client.connection import open_secure_channel

        factory = self.channel_factory or open_secure_channel
        wait_s = self.timeout_s if timeout_s is None else timeout_s
        return connect(node, factory, wait_s, local_checks=self.channel_factory is None)

    @property
    def timeout_s(self) -> float:
        from joblet.client.connect import DEFAULT_TIMEOUT_S

        return float(getattr(self.args, "timeout", None) or DEFAULT_TIMEOUT_S)

    def print(self, text: str = "", *, flush: bool = False) -> None:
        """`text` on stdout; a control character in it (one a renderer did
        not escape field by field) is shown, never sent to the terminal."""
        print(escape_text(text), file=self.out, flush=flush)

    def report(self, line: str) -> None:
        """One line for the user on stderr, `rnx: ` first (not an error: a note)."""
        print(f"rnx: {escape_text(line)}", file=self.err, flush=True)

    def report_node_error(self, node: str, message: str, code: str) -> None:
        """One node's failure on stderr, named (as JSON under --json)."""
        if self.json:
            import json

            line = json.dumps({"error": {"code": code, "message": message, "node": node}})
        else:
            line = f"rnx: error: node {node}: {escape_text(message)}"
        print(line, file=self.err, flush=True)

    def print_json(self, message: Message) -> None:
        print(message_to_json(message), file=self.out, flush=True)


Handler = Callable[[CommandContext], int]
