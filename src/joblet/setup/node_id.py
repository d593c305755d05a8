"""The node id `joblet setup` gives a root that has none yet.

Every interface a daemon makes starts with a prefix of only 3 hex digits of
its node id's SHA-256 (IFNAMSIZ leaves no room for more; see
network.addressing.daemon_prefix), and a daemon refuses to start in a
network namespace where another daemon's nftables table claims its prefix.
Left to the daemon's first start, two random ids would share a prefix once
in 4,096 pairs; set-up draws the id instead, clear of the prefixes of the
other daemons it knows of. An id the root already has is kept: its daemon's
interfaces and table are named after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from pathlib import Path

from joblet.config.model import RootLayout
from joblet.network.addressing import daemon_prefix
from joblet.setup.layout import PUBLIC_MODE, SetupError, write_file

NODE_ID_FILE = "node-id"  # under the root's state directory, as the daemon reads it
# 4,096 prefixes: with a few taken, a free one comes within a handful of draws.
MAX_DRAWS = 100_000


def new_node_id() -> str:
    return str(uuid.uuid4())


def choose_node_id(current: str, taken: Collection[str], draw: Callable[[], str]) -> str:
    """`current` when there is one, else the first drawn id whose prefix is
    not one of the other daemons' ids' prefixes (`taken`: their node ids)."""
    if current:
        return current
    prefixes = {daemon_prefix(other) for other in taken if other}
    for _ in range(MAX_DRAWS):
        candidate = draw()
        if daemon_prefix(candidate) not in prefixes:
            return candidate
    raise SetupError(
        f"no node id found whose interface prefix is free ({len(prefixes)} taken by other "
        "daemons); set server.nodeId in the config or run the daemon in a network "
        "namespace of its own"
    )


def node_id_path(layout: RootLayout) -> Path:
    return layout.state / NODE_ID_FILE


def read_node_id(layout: RootLayout) -> str:
    """The root's node id; "" when it has none (yet) or it cannot be read."""
    try:
        return node_id_path(layout).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def write_node_id(layout: RootLayout, node_id: str) -> None:
    write_file(node_id_path(layout), node_id + "\n", PUBLIC_MODE)
