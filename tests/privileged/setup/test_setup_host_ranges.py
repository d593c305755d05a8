"""`joblet setup` reads the host's real addresses and routes (rtnetlink) and
picks network ranges clear of them. Run in a network namespace of the test's
own (`unshare --net`), which goes with the command."""

from __future__ import annotations

import ipaddress
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.privileged

ROUTES = ("172.20.3.0/24", "172.21.0.0/16", "10.254.0.0/16")


def test_setup_picks_ranges_clear_of_the_hosts_routes(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (a network namespace with routes)")
    root = tmp_path / "root"
    setup = [sys.executable, "-m", "joblet.daemon.main", "setup", "--root", str(root)]
    script = "; ".join(
        [
            "set -e",
            "ip link set lo up",
            "ip addr add 172.20.3.1/24 dev lo",
            *(f"ip route add {r} dev lo" for r in ROUTES[1:]),
            shlex.join(setup),
        ]
    )
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    network = yaml.safe_load((root / "config" / "joblet-config.yml").read_text())["network"]
    bridge = ipaddress.ip_network(network["bridgeCidr"])
    pool = ipaddress.ip_network(network["isolatedPool"])
    for route in map(ipaddress.ip_network, ROUTES):
        assert not bridge.overlaps(route) and not pool.overlaps(route), (bridge, pool, route)
    assert not bridge.overlaps(pool)
    assert f"bridge {bridge}, isolated {pool}" in done.stdout
