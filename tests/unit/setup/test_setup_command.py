from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from joblet.config.host_disk import default_workspace_bytes
from joblet.config.host_memory import default_job_memory_mb, read_mem_total
from joblet.config.loader import load_daemon_config
from joblet.config.model import (
    CgroupConfig,
    FilesystemConfig,
    JobsConfig,
    LimitDefaults,
    RootLayout,
)
from joblet.security.roles import Caller, Role, caller_from_cert_pem
from joblet.setup.command import (
    SetupFiles,
    add_node,
    issue_cert,
    issue_node_entry,
    node_snippet,
    run_setup,
)
from joblet.setup.config_files import NodeEntry, client_address
from joblet.setup.layout import SetupError
from joblet.setup.ranges import default_cgroup_parent

DIRS = ("config", "run", "jobs", "logs", "metrics", "volumes", "network", "runtimes", "state")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _nodes(path: Path) -> dict[str, dict[str, str]]:
    nodes: dict[str, dict[str, str]] = yaml.safe_load(path.read_text())["nodes"]
    return nodes


@pytest.fixture
def loose_umask() -> Iterator[None]:
    # Modes must not depend on the caller's umask: run set-up under the loosest one.
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_setup_creates_layout_and_files_with_safe_modes(tmp_path: Path, loose_umask: None) -> None:
    root = tmp_path / "joblet"
    result = run_setup(root, "0.0.0.0", 50051, [], force=False)
    for name in DIRS:
        assert (root / name).is_dir()
    assert _mode(root / "config") == 0o700
    assert _mode(root / "jobs") == 0o700  # workspaces: root only
    files = result.files
    assert _mode(files.ca_key) == 0o600
    assert _mode(files.daemon_config) == 0o600
    assert _mode(files.rnx_config) == 0o600
    assert _mode(files.ca_cert) == 0o644
    assert sorted(p.name for p in (root / "config").iterdir()) == [
        "ca-cert.pem",
        "ca-key.pem",
        "joblet-config.yml",
        "rnx-config.yml",
        "ui-clients.yml",  # the web UI's certificates, one per role
    ]
    assert _mode(root / "config" / "ui-clients.yml") == 0o600


def test_daemon_config_round_trips_through_the_loader(tmp_path: Path) -> None:
    root = tmp_path / "r"
    result = run_setup(root, "0.0.0.0", 50123, ["node1.example"], force=False)
    config = load_daemon_config(result.files.daemon_config)
    assert config.layout.root == root
    assert (config.server.address, config.server.port) == ("0.0.0.0", 50123)
    # a job's workspace may hold a tenth of the disk under the root
    disk = os.statvfs(tmp_path)
    workspace = default_workspace_bytes(disk.f_blocks * disk.f_frsize)
    assert config.jobs == JobsConfig(max_workspace_bytes=workspace)
    assert config.filesystem == FilesystemConfig()
    # a job without a memory limit gets a quarter of the host's RAM
    sized = LimitDefaults(max_memory_mb=default_job_memory_mb(read_mem_total()))
    assert config.cgroup == CgroupConfig(parent=result.placement.cgroup_parent, defaults=sized)
    assert config.network.bridge_cidr == result.placement.bridge_cidr
    assert config.network.isolated_pool == result.placement.isolated_pool
    assert config.security.ca_cert == result.files.ca_cert.read_text()
    server = _cert(config.security.server_cert)
    server.verify_directly_issued_by(_cert(config.security.ca_cert))
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["node1.example", "localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_daemon_config_shows_defaults_visibly(tmp_path: Path) -> None:
    result = run_setup(tmp_path, "0.0.0.0", 50051, [], force=False)
    raw = yaml.safe_load(result.files.daemon_config.read_text())
    assert raw["joblet"]["maxConcurrentJobs"] == 0
    assert raw["joblet"]["jobTimeout"] == "0s"
    assert raw["joblet"]["stopGracePeriod"] == "5s"
    # A root other than /opt/joblet gets a parent of its own.
    assert raw["cgroup"]["parent"] == default_cgroup_parent(str(tmp_path)) != "joblet"
    assert "/usr" in raw["filesystem"]["allowedMounts"]


def test_rnx_config_has_admin_default_and_viewer_nodes(tmp_path: Path) -> None:
    result = run_setup(tmp_path, "0.0.0.0", 50051, ["node1.example"], force=False)
    nodes = _nodes(result.files.rnx_config)
    assert set(nodes) == {"default", "viewer"}
    ca_pem = result.files.ca_cert.read_text()
    for node, caller in [
        ("default", Caller("admin", Role.ADMIN)),
        ("viewer", Caller("viewer", Role.VIEWER)),
    ]:
        entry = nodes[node]
        assert entry["address"] == "node1.example:50051"
        assert entry["ca"] == ca_pem
        assert caller_from_cert_pem(entry["cert"]) == caller
        _cert(entry["cert"]).verify_directly_issued_by(_cert(ca_pem))
        assert "PRIVATE KEY" in entry["key"]


@pytest.mark.parametrize(
    ("address", "names", "expected"),
    [
        ("0.0.0.0", [], "127.0.0.1:7000"),
        ("::", [], "127.0.0.1:7000"),
        ("0.0.0.0", ["", "a.example", "b.example"], "a.example:7000"),
        ("10.0.0.5", [], "10.0.0.5:7000"),
        ("::1", [], "[::1]:7000"),
    ],
)
def test_client_address(address: str, names: list[str], expected: str) -> None:
    assert client_address(address, 7000, names) == expected


def test_a_specific_bind_address_is_in_the_server_sans(tmp_path: Path) -> None:
    result = run_setup(tmp_path, "10.9.8.7", 50051, [], force=False)
    assert result.server_names == ("10.9.8.7", "localhost", "127.0.0.1")
    assert result.client_address == "10.9.8.7:50051"


def test_existing_files_are_not_overwritten_without_force(tmp_path: Path) -> None:
    first = run_setup(tmp_path, "0.0.0.0", 50051, [], force=False)
    before = {p: p.read_text() for p in first.files.all()}
    with pytest.raises(SetupError, match=r"ca-key\.pem already exists; use --force"):
        run_setup(tmp_path, "0.0.0.0", 50051, [], force=False)
    assert {p: p.read_text() for p in first.files.all()} == before


def test_refusal_happens_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "rnx-config.yml").write_text("nodes: {}\n")
    with pytest.raises(SetupError, match=r"rnx-config\.yml already exists"):
        run_setup(tmp_path, "0.0.0.0", 50051, [], force=False)
    assert not (tmp_path / "config" / "ca-key.pem").exists()
    assert not (tmp_path / "jobs").exists()


def test_force_regenerates_everything(tmp_path: Path) -> None:
    first = run_setup(tmp_path, "0.0.0.0", 50051, [], force=False)
    before = {p: p.read_text() for p in first.files.all()}
    second = run_setup(tmp_path, "0.0.0.0", 50052, [], force=True)
    for path, text in before.items():
        assert path.read_text() != text
    assert _mode(second.files.ca_key) == 0o600
    assert load_daemon_config(second.files.daemon_config).server.port == 50052
    assert not [p for p in (tmp_path / "config").iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize(("port", "names"), [(0, []), (70000, []), (1, ["bad name"])])
def test_bad_port_or_name_is_refused(tmp_path: Path, port: int, names: list[str]) -> None:
    with pytest.raises(SetupError):
        run_setup(tmp_path, "0.0.0.0", port, names, force=False)
    assert not (tmp_path / "config").exists()


def test_issue_cert_uses_the_kept_ca(tmp_path: Path) -> None:
    result = run_setup(tmp_path, "0.0.0.0", 50051, [], force=False)
    cert, key = issue_cert(tmp_path, "viewer", "dave")
    assert caller_from_cert_pem(cert) == Caller("dave", Role.VIEWER)
    _cert(cert).verify_directly_issued_by(_cert(result.files.ca_cert.read_text()))
    assert "PRIVATE KEY" in key


def test_issue_cert_refuses_unknown_role_bad_name_and_missing_ca(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="run `joblet setup` first"):
        issue_cert(tmp_path, Role.ADMIN, "x")
    run_setup(tmp_path, "0.0.0.0", 50051, [], force=False)
    with pytest.raises(SetupError, match="not one of: admin, viewer"):
        issue_cert(tmp_path, "root", "x")
    with pytest.raises(SetupError, match="name must not be empty"):
        issue_cert(tmp_path, Role.ADMIN, "")


def test_issued_node_entry_dials_the_default_node_address(tmp_path: Path) -> None:
    run_setup(tmp_path, "0.0.0.0", 50051, ["srv.example"], force=False)
    entry = issue_node_entry(tmp_path, Role.ADMIN, "erin")
    assert entry.address == "srv.example:50051"
    assert caller_from_cert_pem(entry.cert) == Caller("erin", Role.ADMIN)
    (tmp_path / "config" / "rnx-config.yml").unlink()
    assert issue_node_entry(tmp_path, "viewer", "f").address == "127.0.0.1:50051"
    assert issue_node_entry(tmp_path, "viewer", "f", "h:1").address == "h:1"


def test_node_snippet_pastes_under_nodes(tmp_path: Path) -> None:
    entry = NodeEntry(address="h:1", cert="C\nC\n", key="K\n", ca="A\n")
    parsed = yaml.safe_load("nodes:\n" + node_snippet("ops", entry))
    assert parsed == {
        "nodes": {"ops": {"address": "h:1", "cert": "C\nC\n", "key": "K\n", "ca": "A\n"}}
    }


def test_add_node_adds_refuses_duplicates_and_replaces_with_force(tmp_path: Path) -> None:
    result = run_setup(tmp_path, "0.0.0.0", 50051, [], force=False)
    path = result.files.rnx_config
    entry = issue_node_entry(tmp_path, Role.VIEWER, "grace")
    add_node(path, "grace", entry, force=False)
    assert set(_nodes(path)) == {"default", "viewer", "grace"}
    assert _mode(path) == 0o600
    with pytest.raises(SetupError, match="node 'grace' already exists"):
        add_node(path, "grace", entry, force=False)
    add_node(path, "grace", NodeEntry("other:1", entry.cert, entry.key, entry.ca), force=True)
    assert _nodes(path)["grace"]["address"] == "other:1"
    fresh = tmp_path / "new-rnx.yml"
    add_node(fresh, "solo", entry, force=False)
    assert set(_nodes(fresh)) == {"solo"}
    assert _mode(fresh) == 0o600


def test_add_node_refuses_a_broken_rnx_config(tmp_path: Path) -> None:
    path = tmp_path / "rnx.yml"
    path.write_text("nodes: [1, 2]\n")
    with pytest.raises(SetupError, match="not a valid rnx config"):
        add_node(path, "n", NodeEntry("a:1", "c", "k", "ca"), force=False)


def test_setup_files_names() -> None:
    files = SetupFiles.of(RootLayout(Path("/x")))
    assert files.ca_key == Path("/x/config/ca-key.pem")
    assert files.daemon_config == Path("/x/config/joblet-config.yml")


def test_a_node_certificate_is_printed_as_the_cluster_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from joblet.daemon.main import main

    root = tmp_path / "root"
    run_setup(root, "127.0.0.1", 50051, [], False)
    assert main(["certs", "issue", "--root", str(root), "--role", "node", "--name", "node-a"]) == 0
    section = yaml.safe_load(capsys.readouterr().out)["cluster"]
    assert set(section) == {"nodeCert", "nodeKey"}
    assert caller_from_cert_pem(section["nodeCert"]) == Caller("node-a", Role.NODE)
