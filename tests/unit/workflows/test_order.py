from __future__ import annotations

from joblet.workflows.order import topological


def test_each_job_comes_after_what_it_requires() -> None:
    deps = {"load": ["t-a", "t-b"], "t-b": ["extract"], "t-a": ["extract"], "extract": []}
    assert topological(deps) == ["extract", "t-b", "t-a", "load"]


def test_ties_keep_yaml_order_and_unknown_names_are_ignored() -> None:
    assert topological({"b": [], "a": ["zz"], "c": ["b"]}) == ["b", "a", "c"]


def test_a_cycle_leaves_its_jobs_at_the_end() -> None:
    assert topological({"x": ["y"], "y": ["x"], "z": []}) == ["z", "x", "y"]
