"""Two daemons set up with `joblet setup`'s defaults, serving side by side in
one network namespace of the test's own (so their bridges, nftables tables
and addresses could collide there, and the host is untouched), and what the
test reads of each: its kernel objects and its jobs' addresses."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from integration.conftest import RunningDaemon, _serve
from integration.netns import Netns, Relay

from joblet.network.addressing import bridge_name, gateway
from joblet.network.alloclog import load_with_log
from joblet.volumes import loop


def setup_and_serve(tmp: Path, world: Netns) -> RunningDaemon:
    """`joblet setup` with no placement flags (the defaults pick the cgroup
    parent and ranges), then `joblet serve` inside `world`."""
    root, log_path = tmp / "root", tmp / "daemon.log"
    relay = Relay(world.netns)
    try:
        setup = ["setup", "--root", str(root), "--address", "127.0.0.1", "--port", str(relay.port)]
        subprocess.run(
            [sys.executable, "-m", "joblet.daemon.main", *setup], check=True, capture_output=True
        )
        # Set-up names the node (and so its interfaces) before the first start.
        assert (root / "state" / "node-id").read_text().strip(), "setup wrote no node id"
        config_path = root / "config" / "joblet-config.yml"
        proc = _serve(world, config_path, log_path, None)
    except BaseException:
        relay.close()
        raise
    daemon = RunningDaemon(
        root, relay.port, config_path, root / "config" / "rnx-config.yml",
        proc, log_path, world, relay,
    )  # fmt: skip
    daemon.wait_listening()
    return daemon


@dataclass(frozen=True)
class Placement:
    """What a daemon's config and state name as its own."""

    node_id: str
    prefix: str
    table: str
    cgroup_parent: str
    bridge_cidr: str
    isolated_pool: str

    @classmethod
    def of(cls, daemon: RunningDaemon) -> Placement:
        config = yaml.safe_load(daemon.config_path.read_text())
        return cls(
            (daemon.root / "state" / "node-id").read_text().strip(),
            daemon.prefix(),
            daemon.table(),
            str(config["cgroup"]["parent"]),
            str(config["network"]["bridgeCidr"]),
            str(config["network"]["isolatedPool"]),
        )

    def bridge(self, network: str) -> str:
        return bridge_name(self.node_id, network)


def addresses(daemon: RunningDaemon) -> dict[str, str]:
    """job id -> its address, from the daemon's network state."""
    state = load_with_log(str(daemon.root / "network" / "state.json"))
    return {job: alloc.address for job, alloc in state.allocations.items()}


def link_addresses(world: Netns, link: str) -> list[str]:
    """The IPv4 addresses (with prefix) on `link`; [] when it does not exist."""
    try:
        out = world.ip("-4", "-br", "addr", "show", "dev", link)
    except subprocess.CalledProcessError:
        return []
    return out.split()[2:]


def gateway_of(cidr: str) -> str:
    net = ipaddress.IPv4Network(cidr)
    return f"{gateway(net)}/{net.prefixlen}"


def mount_source(point: Path) -> str | None:
    """The device mounted at `point` in this mount namespace, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == str(point):
                return fields[fields.index("-") + 2]
    return None


def loop_devices_under(root: Path) -> list[str]:
    """Loop devices whose backing image lies under `root`."""
    return loop.leftovers(loop.read_bindings(), str(root.resolve()), set())


def cgroup_dirs(parent: str) -> list[Path]:
    top = Path("/sys/fs/cgroup")
    return [p for p in [top / parent, *top.glob(f"*/{parent}")] if p.is_dir()]
