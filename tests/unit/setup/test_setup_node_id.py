"""Set-up gives a new root a node id whose interface prefix no other daemon
it knows of uses, and keeps the id a root already has."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from joblet.config.model import RootLayout
from joblet.daemon.server import load_or_create_node_id
from joblet.network.addressing import daemon_prefix
from joblet.setup.command import Surroundings, run_setup
from joblet.setup.layout import SetupError
from joblet.setup.neighbours import read_daemon
from joblet.setup.node_id import choose_node_id, node_id_path
from joblet.setup.ranges import OtherDaemon

HOST = ["127.0.0.1/32"]


def _ids() -> Iterator[str]:
    return (f"node-{i}" for i in itertools.count())


def _same_prefix_as(node_id: str) -> str:
    """Another id whose interfaces would start like `node_id`'s."""
    return next(i for i in _ids() if daemon_prefix(i) == daemon_prefix(node_id) and i != node_id)


def _surroundings(others: list[OtherDaemon], draws: Iterator[str]) -> Surroundings:
    return Surroundings(lambda: HOST, lambda root: others, lambda root: None, lambda: next(draws))


def test_setup_draws_a_node_id_clear_of_the_other_daemons_prefixes(tmp_path: Path) -> None:
    other = OtherDaemon("/srv/a", "joblet-a", "172.20.0.0/16", "10.254.0.0/16", "node-a")
    clash, free = _same_prefix_as("node-a"), "node-free"
    assert daemon_prefix(free) != daemon_prefix("node-a")
    draws = iter([clash, free])
    run_setup(tmp_path / "r", "127.0.0.1", 50051, [], False,
              surroundings=_surroundings([other], draws))  # fmt: skip
    path = node_id_path(RootLayout(tmp_path / "r"))
    assert path.read_text() == "node-free\n"
    # The daemon starts with the id set-up chose.
    assert load_or_create_node_id(path) == "node-free"


def test_setup_again_keeps_the_roots_node_id(tmp_path: Path) -> None:
    run_setup(tmp_path / "r", "127.0.0.1", 50051, [], False,
              surroundings=_surroundings([], iter(["first"])))  # fmt: skip
    # Even when another daemon has taken its prefix since: its interfaces and
    # table are named after it.
    other = OtherDaemon("/srv/a", "joblet-a", "172.20.0.0/16", "10.254.0.0/16", "first")
    run_setup(tmp_path / "r", "127.0.0.1", 50051, [], True,
              surroundings=_surroundings([other], iter(["second"])))  # fmt: skip
    assert node_id_path(RootLayout(tmp_path / "r")).read_text() == "first\n"


def test_another_roots_node_id_comes_from_its_file_or_its_config(tmp_path: Path) -> None:
    root = tmp_path / "other"
    run_setup(root, "127.0.0.1", 50051, [], False, surroundings=_surroundings([], iter(["id-f"])))
    found = read_daemon(str(root))
    assert found is not None and found.node_id == "id-f"
    config_path = RootLayout(root).config / "joblet-config.yml"
    config = yaml.safe_load(config_path.read_text())
    config["server"]["nodeId"] = "id-c"
    config_path.write_text(yaml.safe_dump(config))
    found = read_daemon(str(root))
    assert found is not None and found.node_id == "id-c"


def test_every_prefix_taken_is_a_clear_error() -> None:
    taken: dict[str, str] = {}
    for node_id in _ids():
        taken.setdefault(daemon_prefix(node_id), node_id)
        if len(taken) == 16**3:
            break
    with pytest.raises(SetupError, match="no node id found whose interface prefix is free"):
        choose_node_id("", list(taken.values()), iter(_ids()).__next__)
