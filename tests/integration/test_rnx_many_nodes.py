"""One rnx over three real daemons (each in its own network namespace):
`--node a,b` and `--node all` ask every node at once and merge the answers
with a NODE column; a node that is down or hangs is named on stderr, the
others still print, and the exit code says something failed. Node c is set
up from node a's CA (`joblet setup --ca-cert --ca-key`), b with its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from joblet.api import joblet_pb2 as pb

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, start_daemon, wait_status

NAMES = ("a", "b", "c")


@dataclass
class Trio:
    daemons: dict[str, RunningDaemon]
    config: Path
    jobs: dict[str, str]  # node -> the id of a job run there

    def rnx(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(self.config), *args]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip


def write_many_config(daemons: dict[str, RunningDaemon], path: Path) -> Path:
    """One rnx config naming every daemon, each with the client its setup made."""
    nodes = {name: d.node("default") for name, d in daemons.items()}
    # A loaded test host may take seconds to answer: the timeout's own test
    # sets a short one on its command line.
    path.write_text(yaml.safe_dump({"nodes": nodes, "nodeTimeout": "20s"}))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    tmp = tmp_path_factory.mktemp("trio")
    daemons: dict[str, RunningDaemon] = {}
    try:
        for name in ("a", "b"):
            daemons[name] = start_daemon(tmp / name)
        ca_dir = daemons["a"].root / "config"
        from_a = ["--ca-cert", str(ca_dir / "ca-cert.pem"), "--ca-key", str(ca_dir / "ca-key.pem")]
        daemons["c"] = launch_daemon(tmp / "c", setup_args=from_a)
        config = write_many_config(daemons, tmp / "rnx-config.yml")
        jobs = {}
        for name, d in daemons.items():
            res = d.jobs().RunJob(pb.RunJobRequest(command="echo", args=[f"from-{name}"]))
            wait_status(d.jobs(), res.jobUuid, {"COMPLETED"})
            jobs[name] = res.jobUuid
        yield Trio(daemons, config, jobs)
    finally:
        for d in daemons.values():
            d.stop()


def test_list_over_all_nodes_merges_them_with_a_node_column(trio: Trio) -> None:
    res = trio.rnx("--node", "all", "list", "--json")
    assert res.returncode == 0, res.stderr
    listed = {(job["node"], job["id"]) for job in json.loads(res.stdout)["jobs"]}
    assert listed == {(name, job_id) for name, job_id in trio.jobs.items()}
    table = trio.rnx("--node", "a,c", "list")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["NODE", "ID"]
    rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert rows == {"a": trio.jobs["a"][:8], "c": trio.jobs["c"][:8]}


def test_a_job_is_found_by_prefix_on_whichever_node_has_it(trio: Trio) -> None:
    job_id = trio.jobs["b"]
    status = trio.rnx("--node", "all", "status", job_id[:10], "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["node"] == "b" and doc["id"] == job_id
    log = trio.rnx("--node", "all", "log", job_id[:10])
    assert (log.returncode, log.stdout) == (0, "from-b\n"), log.stderr
    missing = trio.rnx("--node", "all", "status", "ffffffff-0000")
    assert missing.returncode == 1
    assert "not found on nodes a, b, c" in missing.stderr


def test_every_reading_command_takes_many_nodes(trio: Trio) -> None:
    for command in (["volume", "list"], ["network", "list"], ["runtime", "list"]):
        res = trio.rnx("--node", "all", *command, "--json")
        assert res.returncode == 0, (command, res.stderr)
        doc = json.loads(res.stdout)
        assert len(doc) == 1 and all("node" in item for item in next(iter(doc.values())))
    # every node has the built-in networks: each is listed once per node
    networks = json.loads(trio.rnx("--node", "all", "network", "list", "--json").stdout)
    assert {n["node"] for n in networks["networks"] if n["name"] == "bridge"} == set(NAMES)
    status = trio.rnx("--node", "b,c", "monitor", "status", "--json")
    assert status.returncode == 0, status.stderr
    lines = [json.loads(line) for line in status.stdout.splitlines()]
    node_ids = {d.root.joinpath("state", "node-id").read_text().strip() for d in (
        trio.daemons["b"], trio.daemons["c"])}  # fmt: skip
    assert [doc["node"] for doc in lines] == ["b", "c"]
    assert {doc["host"]["node_id"] for doc in lines} == node_ids


def test_a_command_that_changes_something_takes_one_node(trio: Trio) -> None:
    for command in (["run", "true"], ["stop", trio.jobs["a"]], ["volume", "remove", "v"]):
        res = trio.rnx("--node", "all", *command)
        assert res.returncode == 2, (command, res.stdout, res.stderr)
        assert res.stderr.startswith("rnx: error: this command acts on one node"), res.stderr
    unknown = trio.rnx("--node", "a,zz", "list")
    assert unknown.returncode == 2 and "'zz' not in the config" in unknown.stderr


def test_nodes_probes_every_node(trio: Trio) -> None:
    res = trio.rnx("nodes", "--json")
    assert res.returncode == 0, res.stderr
    entries = {n["name"]: n for n in json.loads(res.stdout)["nodes"]}
    for name, d in trio.daemons.items():
        entry = entries[name]
        assert entry["reachable"] is True and entry["latency_ms"] > 0
        assert entry["node_id"] == d.root.joinpath("state", "node-id").read_text().strip()
        assert entry["version"] and entry["active_jobs"] == 0
    alone = trio.rnx("--node", "a", "nodes", "--cluster")
    assert alone.returncode == 1
    assert alone.stderr == "rnx: error: this node is in no cluster (cluster.name is not set)\n"


def test_a_client_of_node_a_talks_to_a_node_set_up_from_its_ca(trio: Trio) -> None:
    a_client = trio.daemons["a"].node("default")
    nodes = {
        name: {**a_client, "address": trio.daemons[name].node("default")["address"]}
        for name in ("c", "b")
    }
    config = trio.config.with_name("a-client.yml")
    config.write_text(yaml.safe_dump({"nodes": nodes}))
    config.chmod(0o600)
    res = trio.rnx("--config", str(config), "--node", "c", "list", "-q")
    assert (res.returncode, res.stdout) == (0, trio.jobs["c"] + "\n"), res.stderr
    # b has a CA of its own: a's client is a stranger there
    refused = trio.rnx("--config", str(config), "--node", "b", "list", "-q")
    assert refused.returncode == 1 and "cannot reach joblet" in refused.stderr


def test_a_hung_node_is_given_up_on_after_the_node_timeout(trio: Trio) -> None:
    hung = trio.daemons["b"]
    os.kill(hung.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        res = trio.rnx("--node", "all", "--node-timeout", "1s", "list", "--json")
        elapsed = time.monotonic() - started
    finally:
        os.kill(hung.proc.pid, signal.SIGCONT)
    assert res.returncode == 1
    assert {job["node"] for job in json.loads(res.stdout)["jobs"]} == {"a", "c"}
    error = json.loads(res.stderr)["error"]
    assert error["node"] == "b" and error["code"] == "DEADLINE_EXCEEDED"
    assert "did not answer within 1s (--node-timeout" in error["message"]
    assert elapsed < 10  # not the 30 s of a call's own deadline


def test_a_stopped_node_is_named_and_the_others_still_print(trio: Trio) -> None:
    trio.daemons["c"].stop_daemon_only()
    res = trio.rnx("--node", "all", "list")
    assert res.returncode == 1
    assert {line.split()[0] for line in res.stdout.splitlines()[1:]} == {"a", "b"}
    errors = res.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith("rnx: error: node c: cannot reach joblet")
    probe = trio.rnx("nodes")
    assert probe.returncode == 1 and "node c:" in probe.stderr
    row = next(line for line in probe.stdout.splitlines() if line.split()[:1] == ["c"])
    assert " no " in row
