"""The web UI over two real daemons (each in its own namespace): the nodes
page asks each what `rnx nodes` asks, and the header's switcher points a
session's pages at the other node, with the session's role still applied."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, RunningDaemon, launch_daemon, wait_status
from .ui_support import Browser, UiProcess, mint, start_ui

pytestmark = [pytest.mark.integration, pytest.mark.privileged]


@dataclass
class Pair:
    here: RunningDaemon
    other: RunningDaemon
    ui: UiProcess


def node_config(here: RunningDaemon, other: RunningDaemon, path: Path) -> Path:
    """`here`'s config with two more nodes: `east` (the other daemon) and
    `down` (its certificates, an address nothing listens on)."""
    east = other.root / "config" / "ui-clients.yml"
    clients = yaml.safe_load(east.read_text())
    for entry in clients["nodes"].values():
        entry["address"] = "127.0.0.1:1"
    down = path.with_name("down-ui-clients.yml")
    down.write_text(yaml.safe_dump(clients))
    down.chmod(0o600)
    config = yaml.safe_load(here.config_path.read_text())
    config["ui"] = {"nodes": {"east": str(east), "down": str(down)}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))  # the nodes in this order
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    tmp = tmp_path_factory.mktemp("ui-nodes")
    with contextlib.ExitStack() as undo:
        # both at once: a daemon's start is mostly waiting
        with ThreadPoolExecutor(2) as pool:
            starts = [pool.submit(launch_daemon, tmp / name) for name in ("here", "other")]
        for start in starts:
            if start.exception() is None:
                undo.callback(start.result().stop)
        here, other = (start.result() for start in starts)
        ui = start_ui(here, config=node_config(here, other, tmp / "ui-config.yml"))
        undo.callback(ui.stop)
        yield Pair(here, other, ui)


def signed_in(pair: Pair, role: str) -> Browser:
    browser = Browser(pair.ui)
    assert browser.sign_in(mint(pair.here, role)).status == 303
    return browser


def node_id(daemon: RunningDaemon) -> str:
    stub = pb_grpc.MonitoringServiceStub(daemon.channel())  # type: ignore[no-untyped-call]
    status = stub.GetSystemStatus(pb.EmptyRequest())
    return str(status.host.nodeId)


def test_the_nodes_page_asks_every_node(pair: Pair) -> None:
    job = pair.other.jobs().RunJob(pb.RunJobRequest(command="sleep", args=["30"])).jobUuid
    try:
        page = signed_in(pair, "viewer").get("/nodes")
        assert page.status == 200
        rows = dict(re.findall(r'<tr data-node="(\w+)" data-reachable="(\w+)"', page.body))
        assert rows == {"local": "yes", "east": "yes", "down": "no"}
        assert "no: UNAVAILABLE" in page.body
        ids = re.findall(r'data-field="nodeId">([^<]+)<', page.body)
        assert ids == [node_id(pair.here), node_id(pair.other)]
        active = re.findall(r'data-field="active">(\d+)<', page.body)
        assert active == ["0", "1"]
        assert " ms</td>" in page.body
    finally:
        pair.other.jobs().StopJob(pb.StopJobReq(uuid=job))


def test_the_switcher_points_the_session_at_the_other_node(pair: Pair) -> None:
    job = pair.other.jobs().RunJob(pb.RunJobRequest(command="true", name="on-east")).jobUuid
    admin = signed_in(pair, "admin")
    assert 'id="node-select"' in admin.get("/jobs").body
    assert job not in admin.get("/jobs").body
    moved = admin.post("/nodes/select", {"node": "east", "next": f"/jobs/{job}"})
    # a job page names an id of the node left: back to the list
    assert (moved.status, moved.header("Location")) == (303, "/jobs")
    assert job in admin.get("/jobs").body
    assert admin.get(f"/jobs/{job}").status == 200
    assert "<option selected>east</option>" in admin.get("/jobs").body
    # the sorted list and the log download ask the selected node too
    assert job in admin.get("/jobs?sort=name&order=asc").body
    wait_status(pair.other.jobs(), job, {"COMPLETED"})
    assert admin.get(f"/jobs/{job}/log.txt").status == 200
    # actions go to the selected node, with the session's role
    ran = admin.post("/run", {"command": "echo from-ui", "name": "ui-on-east"})
    assert ran.status == 303, ran.body
    names = [j.name for j in pair.other.jobs().ListJobs(pb.EmptyRequest()).jobs]
    assert "ui-on-east" in names
    assert "ui-on-east" not in [j.name for j in pair.here.jobs().ListJobs(pb.EmptyRequest()).jobs]
    # another browser's session stays on its own node
    assert job not in signed_in(pair, "viewer").get("/jobs").body


def test_a_viewer_switches_too_but_still_may_not_act(pair: Pair) -> None:
    viewer = signed_in(pair, "viewer")
    assert viewer.post("/nodes/select", {"node": "east"}).status == 303
    refused = viewer.post("/run", {"command": "true"})
    assert (refused.status, refused.body) == (403, "viewers may not change anything\n")


def test_an_unknown_node_or_a_switch_without_csrf_is_refused(pair: Pair) -> None:
    admin = signed_in(pair, "admin")
    unknown = admin.post("/nodes/select", {"node": "nowhere"})
    assert unknown.status == 404
    assert "node &#39;nowhere&#39; is not one of: local, east, down" in unknown.body
    assert admin.post("/nodes/select", {"node": "east"}, csrf=False).status == 403
    evil = admin.post("/nodes/select", {"node": "east"}, headers={"Origin": "http://evil.example"})
    assert evil.status == 403
    # none of those moved the session
    assert "<option selected>local</option>" in admin.get("/jobs").body


def test_the_next_page_after_a_switch_stays_on_this_ui(pair: Pair) -> None:
    admin = signed_in(pair, "admin")
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        moved = admin.post("/nodes/select", {"node": "local", "next": target})
        assert (moved.status, moved.header("Location")) == (303, "/jobs")
    moved = admin.post("/nodes/select", {"node": "local", "next": "/resources"})
    assert moved.header("Location") == "/resources"
