"""The workflow graph: layers by longest path, barycentre ordering, SVG."""

from __future__ import annotations

import re

import pytest

from joblet.ui.dag import DagNode, crossings, layers_of, layout, render_svg


def test_each_job_is_one_layer_below_its_deepest_dependency() -> None:
    deps = {"a": [], "b": ["a"], "c": ["a", "b"], "d": [], "e": ["missing"]}
    assert layers_of(deps) == {"a": 0, "b": 1, "c": 2, "d": 0, "e": 0}


def test_a_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        layers_of({"a": ["b"], "b": ["a"]})


def test_barycentre_ordering_removes_the_crossings_of_a_naive_order() -> None:
    # alphabetical order crosses both edges; a good order crosses none
    deps = {"a": [], "b": [], "x": ["b"], "y": ["a"]}
    result = layout(deps)
    assert result.layers == (("a", "b"), ("y", "x"))
    assert crossings(result) == 0


def test_a_wider_graph_gets_no_more_crossings_than_it_needs() -> None:
    deps = {"r1": [], "r2": [], "r3": [], "m1": ["r3"], "m2": ["r1"], "m3": ["r2"],
            "z": ["m1", "m2", "m3"]}  # fmt: skip
    assert crossings(layout(deps)) == 0


def test_the_svg_has_a_node_per_job_an_edge_per_dependency_and_status_classes() -> None:
    deps = {"build": [], "test": ["build"], "ship": ["test"]}
    nodes = {
        "build": DagNode("build", "COMPLETED", "/jobs/1"),
        "test": DagNode("test", "RUNNING", "/jobs/2"),
        "ship": DagNode("ship", ""),
    }
    svg = render_svg(layout(deps), nodes)
    assert re.findall(r'data-name="(\w+)" data-status="(\w+)"', svg) == [
        ("build", "completed"), ("test", "running"), ("ship", "unknown")]  # fmt: skip
    assert re.findall(r'data-from="(\w+)" data-to="(\w+)"', svg) == [
        ("build", "test"), ("test", "ship")]  # fmt: skip
    assert '<a href="/jobs/2">' in svg and "<script" not in svg


def test_names_are_escaped() -> None:
    svg = render_svg(layout({"<b>": []}), {})
    assert "&lt;b&gt;" in svg and "<b>" not in svg


def test_an_edge_over_several_layers_goes_around_the_jobs_between() -> None:
    # extract -> clean -> load -> notify, and extract -> notify over two layers
    deps = {"extract": [], "clean": ["extract"], "load": ["clean"], "notify": ["load", "extract"]}
    result = layout(deps)
    route = result.routes[("extract", "notify")]
    assert len(route) == 2  # a placeholder in each layer between
    for i, name in enumerate(route, start=1):
        assert name in result.layers[i] and len(result.layers[i]) == 2
    assert crossings(result) == 0
    svg = render_svg(result, {})
    assert svg.count("<polyline") == 4 and svg.count('class="dag-node"') == 4
