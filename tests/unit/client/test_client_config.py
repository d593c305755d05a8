"""rnx config discovery order, parsing and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from joblet.client.config import find_config_path, load_rnx_config, search_paths
from joblet.client.errors import ClientConfigError

PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


def _indent(text: str) -> str:
    return "".join(f"      {line}\n" for line in text.splitlines())


def _node_yaml(name: str, address: str) -> str:
    return (
        f"  {name}:\n    address: {address}\n"
        f"    cert: |\n{_indent(PEM)}    key: |\n{_indent(PEM)}    ca: |\n{_indent(PEM)}"
    )


@pytest.fixture
def places(tmp_path: Path) -> tuple[Path, Path, Path]:
    cwd, home, system = tmp_path / "cwd", tmp_path / "home", tmp_path / "opt" / "rnx-config.yml"
    cwd.mkdir()
    home.mkdir()
    return cwd, home, system


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("nodes: {}\n")
    return path


def test_search_order(places: tuple[Path, Path, Path], tmp_path: Path) -> None:
    cwd, home, system = places
    local, user = cwd / "rnx-config.yml", home / ".rnx" / "rnx-config.yml"
    assert search_paths(cwd, home, system) == (local, user, system)

    def find(explicit: str | None = None, env: dict[str, str] | None = None) -> Path:
        return find_config_path(explicit, env or {}, cwd, home, system)

    _touch(system)
    assert find() == system
    _touch(user)
    assert find() == user
    _touch(local)
    assert find() == local
    from_env = _touch(tmp_path / "env.yml")
    assert find(env={"RNX_CONFIG": str(from_env)}) == from_env
    flag = _touch(tmp_path / "flag.yml")
    assert find(str(flag), {"RNX_CONFIG": str(from_env)}) == flag


def test_explicit_missing_file_is_an_error(places: tuple[Path, Path, Path]) -> None:
    cwd, home, system = places
    _touch(cwd / "rnx-config.yml")  # present, but must not be used instead
    with pytest.raises(ClientConfigError, match=r"/nope.yml \(from --config\) does not exist"):
        find_config_path("/nope.yml", {}, cwd, home, system)
    with pytest.raises(ClientConfigError, match=r"from \$RNX_CONFIG"):
        find_config_path(None, {"RNX_CONFIG": "/nope.yml"}, cwd, home, system)


def test_nothing_found_lists_where_it_looked(places: tuple[Path, Path, Path]) -> None:
    cwd, home, system = places
    with pytest.raises(ClientConfigError) as caught:
        find_config_path(None, {}, cwd, home, system)
    assert caught.value.exit_code == 2
    for path in search_paths(cwd, home, system):
        assert str(path) in caught.value.message


def test_load_nodes_and_select(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        "version: '3.0'\nnodes:\n"
        + _node_yaml("default", "'localhost:50051'")
        + _node_yaml("viewer", "'10.1.2.3:7000'")
        + "    serverName: joblet.lan\n"
    )
    config = load_rnx_config(path)
    assert sorted(config.nodes) == ["default", "viewer"]
    viewer = config.node("viewer")
    assert (viewer.address, viewer.server_name, viewer.cert) == ("10.1.2.3:7000", "joblet.lan", PEM)
    assert config.node("default").server_name == ""
    with pytest.raises(ClientConfigError, match=r"node 'x' .*available nodes: default, viewer"):
        config.node("x")


def test_pem_from_files_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    for name in ("c.pem", "k.pem", "ca.pem"):
        (tmp_path / "certs" / name).write_text(PEM.replace("AAAA", name))
    path = tmp_path / "c.yml"
    path.write_text(
        "nodes:\n  default:\n    address: 'h:1'\n    certFile: certs/c.pem\n"
        "    keyFile: certs/k.pem\n    caFile: certs/ca.pem\n"
    )
    node = load_rnx_config(path).node("default")
    assert "c.pem" in node.cert and "k.pem" in node.key and "ca.pem" in node.ca


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nodes: [\n", "not valid YAML"),
        ("- a\n", "must have a 'nodes:' mapping"),
        ("nodes: {}\n", "defines no nodes"),
        ("nodes:\n  default: 3\n", "node 'default': must be a mapping"),
        ("nodes:\n  default: {cert: x}\n", "'address' \\(host:port\\) is required"),
        ("nodes:\n  default: {address: 'nohost'}\n", "address 'nohost' is not host:port"),
        ("nodes:\n  default: {address: 'h:99999'}\n", "is not host:port"),
        ("nodes:\n  default: {address: 'h:1'}\n", "client certificate is missing"),
        ("nodes:\n  default: {address: 'h:1', cert: 'not pem'}\n", "'cert' does not hold a PEM"),
        ("nodes:\n  default: {address: 'h:1', certFile: nothere.pem}\n", "cannot read client cert"),
    ],
)
def test_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yml"
    path.write_text(text)
    with pytest.raises(ClientConfigError, match=message) as caught:
        load_rnx_config(path).node("default")
    assert caught.value.exit_code == 2
    assert str(path) in caught.value.message
    assert "\n" not in caught.value.message


def test_ipv6_address_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("nodes:\n" + _node_yaml("default", "'[::1]:50051'"))
    assert load_rnx_config(path).node("default").address == "[::1]:50051"


def test_one_malformed_node_does_not_break_the_others(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("nodes:\n" + _node_yaml("default", "'h:1'") + "  broken: 3\n")
    config = load_rnx_config(path)
    assert config.node("default").address == "h:1"
    with pytest.raises(ClientConfigError, match="node 'broken': must be a mapping"):
        config.node("broken")


def test_a_world_readable_config_holding_a_key_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("nodes:\n" + _node_yaml("default", "'h:1'"))
    config = load_rnx_config(path)
    assert "readable by every user" in config.exposed_key_warning(0o644)
    assert "chmod 600" in config.exposed_key_warning(0o604)
    assert config.exposed_key_warning(0o640) == ""
    path.write_text("nodes:\n  default: {address: 'h:1', keyFile: k.pem}\n")
    assert load_rnx_config(path).exposed_key_warning(0o644) == ""  # the key is elsewhere


@pytest.mark.parametrize(
    ("written", "seconds"), [("2", 2.0), ("1.5", 1.5), ("3s", 3.0), ("500ms", 0.5), (None, None)]
)
def test_node_timeout_is_read_from_the_top_level(
    tmp_path: Path, written: str | None, seconds: float | None
) -> None:
    path = tmp_path / "c.yml"
    top = "" if written is None else f"nodeTimeout: {written}\n"
    path.write_text(top + "nodes:\n" + _node_yaml("default", "127.0.0.1:1"))
    assert load_rnx_config(path).node_timeout_s == seconds


@pytest.mark.parametrize("written", ["0", "-1s", "soon", "true"])
def test_a_node_timeout_that_is_no_duration_is_refused(tmp_path: Path, written: str) -> None:
    path = tmp_path / "c.yml"
    path.write_text(f"nodeTimeout: {written}\nnodes:\n" + _node_yaml("default", "127.0.0.1:1"))
    with pytest.raises(ClientConfigError, match="'nodeTimeout' must be a duration above 0"):
        load_rnx_config(path)
