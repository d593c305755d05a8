"""The nodes page's table and a switch's way back: pure rendering and logic."""

from __future__ import annotations

import re

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.cli.nodes import Probe
from joblet.ui.app import UiState
from joblet.ui.config import UiConfig
from joblet.ui.node_pages import NodeRow, _local_path
from joblet.ui.sessions import SessionStore


def render(rows: list[NodeRow], cluster: pb.ClusterNodes | None) -> str:
    state = UiState(UiConfig(), None, None)  # type: ignore[arg-type]
    session = SessionStore().open("viewer", "bob", now=0)
    return state.templates.get_template("nodes.html").render(
        session=session, path="/nodes", nodes=["local", "east"], rows=rows, cluster=cluster
    )


def test_each_node_shows_what_it_answered_or_why_not() -> None:
    rows = [NodeRow("local", "127.0.0.1:443", True, Probe(1.25, "1.0.9", "n-1", 3), ""),
            NodeRow("east", "10.0.0.2:443", False, None, "UNAVAILABLE: <refused>")]  # fmt: skip
    page = render(rows, None)
    assert re.findall(r'data-node="(\w+)" data-reachable="(\w+)"', page) == [
        ("local", "yes"), ("east", "no")]  # fmt: skip
    assert "1.2 ms" in page and 'data-field="active">3<' in page
    assert "no: UNAVAILABLE: &lt;refused&gt;" in page
    assert 'id="cluster"' not in page
    assert "<option selected>local</option><option>east</option>" in page


def test_a_cluster_member_lists_the_clusters_nodes() -> None:
    cluster = pb.ClusterNodes(clusterName="prod", answeredBy="n-1", nodes=[
        pb.ClusterNode(nodeId="n-1", address="10.0.0.1:443", cpus=8, freeSlots=-1),
        pb.ClusterNode(nodeId="n-2", address="10.0.0.2:443", cpus=4, freeSlots=2),
    ])  # fmt: skip
    page = render([], cluster)
    assert 'id="cluster"' in page and "Cluster prod (as n-1 sees it)" in page
    assert re.findall(r"<tr><td>([\w-]+)</td>", page) == ["n-1", "n-2"]
    assert "no limit" in page


@pytest.mark.parametrize(
    ("given", "back"),
    [("/resources", "/resources"), ("//evil.example/x", "/jobs"), ("https://e.example/", "/jobs"),
     ("/\\evil.example", "/jobs"), ("", "/jobs")],
)  # fmt: skip
def test_the_way_back_after_a_switch_stays_on_this_ui(given: str, back: str) -> None:
    assert _local_path(given) == back
