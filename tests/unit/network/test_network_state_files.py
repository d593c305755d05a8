"""The network state on disk: state.json (fsynced) and the allocation log,
which a bridge job's start and end only append to."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from joblet.network import alloclog
from joblet.network.alloclog import AllocationLog, load_with_log, replay
from joblet.network.config import NetworkConfig
from joblet.network.manager import NetworkManager
from joblet.network.state import Allocation, NetState, NetworkDef, load_state, save_state


@pytest.fixture
def disk_waits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls that wait for the journal (fsync, and a rename, which on
    ext4 allocates the renamed file's blocks at once), the calls still made."""
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync " + os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        calls.append(f"rename {dst}")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls


def manager(state_dir: Path) -> NetworkManager:
    resolv = state_dir / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\n")
    return NetworkManager(NetworkConfig(), str(state_dir), "node-1", resolv_conf=str(resolv))


def reread(state_dir: Path) -> NetState:
    """What a daemon killed now finds at its next start."""
    return load_with_log(str(state_dir / "state.json"))


def test_a_bridge_jobs_start_and_end_wait_for_no_disk(
    tmp_path: Path, disk_waits: list[str]
) -> None:
    nets = manager(tmp_path)
    plan = nets.allocate("job-1", "bridge", "web")
    assert plan["mode"] == "bridge" and plan["address"].startswith("172.20.")
    nets.allocate("job-2", "bridge")
    assert list(reread(tmp_path).allocations) == ["job-1", "job-2"]
    nets.release("job-1")
    assert list(reread(tmp_path).allocations) == ["job-2"]
    assert reread(tmp_path).allocations["job-2"] == nets.allocation("job-2")
    assert reread(tmp_path).cursors == {"bridge": nets._state.cursors["bridge"]}
    assert disk_waits == []


def test_restore_rewrites_the_log_with_what_is_live(tmp_path: Path) -> None:
    nets = manager(tmp_path)
    for n in range(5):
        nets.allocate(f"job-{n}", "bridge")
    nets.release("job-0")
    nets.restore(["job-3", "gone"])
    assert list(reread(tmp_path).allocations) == ["job-3"]
    assert len((tmp_path / alloclog.LOG_FILE).read_text().splitlines()) == 2  # cursors, job-3
    nets.allocate("job-5", "bridge")  # appends after the rewrite
    assert sorted(reread(tmp_path).allocations) == ["job-3", "job-5"]


def test_the_log_is_rewritten_once_it_is_mostly_dead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alloclog, "COMPACT_AT", 10)
    nets = manager(tmp_path)
    nets.allocate("keep", "bridge")
    for n in range(40):
        nets.allocate(f"job-{n}", "bridge")
        nets.release(f"job-{n}")
        assert len((tmp_path / alloclog.LOG_FILE).read_text().splitlines()) <= 10
    assert list(reread(tmp_path).allocations) == ["keep"]


def alloc(job_id: str, slot: int = 2) -> Allocation:
    return Allocation(job_id, "a", "", f"10.1.0.{slot}", 24, "10.1.0.1", f"jabcv{job_id}", slot)


def test_a_line_cut_short_is_skipped() -> None:
    # Only the last line can be cut (a kill during its write), from a change
    # that never returned: no job ran on it.
    whole = alloclog.add_record(alloc("j1"), 3) + alloclog.add_record(alloc("j2", 3), 4)
    cut = whole + alloclog.drop_record("j1")[:7]
    allocations, cursors, bad = replay(cut.splitlines())
    assert (list(allocations), cursors, bad) == (["j1", "j2"], {"a": 4}, 1)


def test_networks_are_fsynced_and_kept_apart(tmp_path: Path, disk_waits: list[str]) -> None:
    state = NetState(networks={"a": NetworkDef("a", "10.1.0.0/24", "jabcb1")}, table="t")
    state.allocations["j1"] = alloc("j1")
    path = tmp_path / "state.json"
    save_state(str(path), state)
    assert disk_waits == [f"fsync {path}.tmp", f"rename {path}"]
    assert load_state(str(path)).networks == state.networks
    assert "allocations" not in json.loads(path.read_text())


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
    loaded = reread(tmp_path)
    assert (loaded.allocations, loaded.cursors) == ({"j1": alloc("j1")}, {"a": 2})
    # Once the log exists, it is what counts.
    AllocationLog(str(tmp_path)).rewrite({}, {})
    assert reread(tmp_path).allocations == {}
