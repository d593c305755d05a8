"""What else on this host `joblet setup` must keep clear of: the host's addresses
and routes, and the configs of the other daemons it can find (the roots named
in cgroup owner records on /run, and the default root)."""

from __future__ import annotations

from pathlib import Path

from joblet.config.model import DEFAULT_ROOT, RootLayout
from joblet.resources.owner import parse_owner_record
from joblet.resources.ownership import DEFAULT_LOCK_DIR, normal_root
from joblet.setup.layout import SetupError
from joblet.setup.node_id import read_node_id
from joblet.setup.ranges import OtherDaemon, other_daemon_of

CONFIG_NAME = "joblet-config.yml"


def known_roots(lock_dir: Path = DEFAULT_LOCK_DIR) -> set[str]:
    roots = {str(DEFAULT_ROOT)}
    try:
        records = list(lock_dir.glob("*.owner"))
    except OSError:
        records = []
    for path in records:
        try:
            record = parse_owner_record(path.read_text())
        except (OSError, UnicodeDecodeError):
            continue
        if record is not None:
            roots.add(record.root)
    return roots


def read_daemon(root: str) -> OtherDaemon | None:
    """The claims in `root`'s daemon config and its node id; None when it
    has no config readable."""
    layout = RootLayout(Path(root))
    try:
        text = (layout.config / CONFIG_NAME).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    return other_daemon_of(root, text, read_node_id(layout))


def other_daemons(root: Path, lock_dir: Path = DEFAULT_LOCK_DIR) -> list[OtherDaemon]:
    me = normal_root(root)
    found = (read_daemon(r) for r in sorted(known_roots(lock_dir)) if r != me)
    return [d for d in found if d is not None]


def host_networks() -> list[str]:
    """The host's IPv4 addresses and routes (rtnetlink dumps; no root needed)."""
    from joblet.network.netlink import RtNetlink

    try:
        with RtNetlink() as nl:
            return nl.ipv4_networks()
    except OSError as exc:
        raise SetupError(f"cannot read the host's addresses and routes: {exc}") from exc
