"""The network state's two files: what is fsynced, and what a start reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from joblet.network.config import NetworkConfig
from joblet.network.manager import NetworkManager
from joblet.network.state import (
    ALLOCATIONS_FILE,
    Allocation,
    NetState,
    NetworkDef,
    load_state,
    save_state,
)


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files os.fsync is called on (their paths), the call still made."""
    calls: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


def manager(state_dir: Path) -> NetworkManager:
    resolv = state_dir / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\n")
    return NetworkManager(NetworkConfig(), str(state_dir), "node-1", resolv_conf=str(resolv))


def allocations(state_dir: Path) -> dict[str, object]:
    return dict(json.loads((state_dir / ALLOCATIONS_FILE).read_text())["allocations"])


def test_a_bridge_jobs_start_and_end_wait_for_no_fsync(tmp_path: Path, fsyncs: list[str]) -> None:
    # An fsync commits the file system's whole journal: on the start path it
    # made every bridge job wait for whatever else was being written.
    nets = manager(tmp_path)
    plan = nets.allocate("job-1", "bridge", "web")
    assert plan["mode"] == "bridge" and plan["address"].startswith("172.20.")
    assert list(allocations(tmp_path)) == ["job-1"]
    nets.release("job-1")
    assert allocations(tmp_path) == {}
    assert fsyncs == []
    # What a restarted daemon reads back.
    nets.allocate("job-2", "bridge")
    assert list(load_state(str(tmp_path / "state.json")).allocations) == ["job-2"]
    assert fsyncs == []


def test_restore_drops_gone_jobs_without_fsync(tmp_path: Path, fsyncs: list[str]) -> None:
    nets = manager(tmp_path)
    nets.allocate("job-1", "bridge")
    nets.allocate("job-2", "bridge")
    nets.restore(["job-2"])
    assert list(allocations(tmp_path)) == ["job-2"]
    assert fsyncs == []


def test_networks_are_fsynced(tmp_path: Path, fsyncs: list[str]) -> None:
    state = NetState(networks={"a": NetworkDef("a", "10.1.0.0/24", "jabcb1")}, table="t")
    path = tmp_path / "state.json"
    save_state(str(path), state)
    assert fsyncs == [f"{path}.tmp"]
    assert load_state(str(path)) == state
    assert "allocations" not in json.loads(path.read_text())


def alloc(job_id: str) -> Allocation:
    return Allocation(job_id, "a", "", "10.1.0.2", 24, "10.1.0.1", "jabcvj1", 2)


def test_a_torn_allocations_file_starts_with_none_and_keeps_the_networks(
    tmp_path: Path,
) -> None:
    # Only a host crash can tear it (it is replaced by rename, never fsynced),
    # and no job of before a host crash runs after it.
    state = NetState(networks={"a": NetworkDef("a", "10.1.0.0/24", "jabcb1")})
    state.allocations["j1"] = alloc("j1")
    path = tmp_path / "state.json"
    save_state(str(path), state)
    (tmp_path / ALLOCATIONS_FILE).write_text('{"allocations": {"j1": {"job_id"')
    loaded = load_state(str(path))
    assert loaded.networks == state.networks
    assert loaded.allocations == {}


def test_an_earlier_versions_allocations_in_state_json_are_read(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    old = {
        "networks": {"a": {"name": "a", "cidr": "10.1.0.0/24", "bridge": "jabcb1"}},
        "allocations": {"j1": alloc("j1").__dict__},
        "cursors": {"a": 2},
        "table": "t",
        "retired": [],
    }
    path.write_text(json.dumps(old))
    loaded = load_state(str(path))
    assert loaded.allocations == {"j1": alloc("j1")}
    assert loaded.cursors == {"a": 2}
    # Once an allocations file exists, it is the one that counts.
    save_state(str(path), NetState(networks=loaded.networks, table="t"))
    assert load_state(str(path)).allocations == {}
