"""`--node a,b` and `--node all`: which nodes, and how their answers merge."""

from __future__ import annotations

import pytest

from joblet.cli.node_select import (
    JobMatch,
    NodeAnswer,
    answered,
    expand,
    failed,
    merge_sorted,
    names_many,
    node_timeout,
    pick_job,
    with_node_column,
)
from joblet.client.errors import EXIT_USAGE, CliError

CONFIGURED = ["a", "b", "c"]


def test_one_name_is_one_node_and_a_list_or_all_is_many() -> None:
    assert not names_many("default")
    assert names_many("all") and names_many("a,b")


def test_expand_keeps_the_order_given_and_all_is_the_configs() -> None:
    assert expand("c,a", CONFIGURED) == ["c", "a"]
    assert expand("all", CONFIGURED) == CONFIGURED


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ("a,zz", "node 'zz' not in the config (available nodes: a, b, c)"),
        ("a,,b", "an empty node name"),
        ("a,b,a", "--node names a more than once"),
    ],
)
def test_expand_refuses_unknown_empty_and_repeated_names(selection: str, message: str) -> None:
    with pytest.raises(CliError) as caught:
        expand(selection, CONFIGURED)
    assert message in caught.value.message and caught.value.exit_code == EXIT_USAGE


def test_merge_orders_every_nodes_items_newest_first_within_the_limit() -> None:
    per_node = [("a", [5, 1]), ("b", [4, 3]), ("c", [])]
    assert merge_sorted(per_node, key=lambda n: n) == [
        ("a", 5), ("b", 4), ("b", 3), ("a", 1),
    ]  # fmt: skip
    assert merge_sorted(per_node, key=lambda n: n, limit=2) == [("a", 5), ("b", 4)]


def test_node_column_comes_first() -> None:
    headers, rows = with_node_column(["ID"], [["x"], ["y"]], ["a", "b"])
    assert headers == ["NODE", "ID"] and rows == [["a", "x"], ["b", "y"]]


def test_answers_split_into_values_and_failures() -> None:
    answers = [NodeAnswer("a", 1), NodeAnswer[int]("b", error="down", code="UNAVAILABLE")]
    assert answered(answers) == [("a", 1)]
    assert [a.node for a in failed(answers)] == ["b"]


def test_a_job_is_picked_when_exactly_one_node_has_it() -> None:
    assert pick_job("ab", [JobMatch("b", "abc")], CONFIGURED) == JobMatch("b", "abc")
    with pytest.raises(CliError) as none:
        pick_job("ab", [], CONFIGURED)
    assert none.value.code == "NOT_FOUND" and "not found on nodes a, b, c" in none.value.message
    with pytest.raises(CliError) as two:
        pick_job("ab", [JobMatch("a", "ab1"), JobMatch("c", "ab2")], CONFIGURED)
    assert "ambiguous across nodes: ab1 on a, ab2 on c" in two.value.message


def test_the_flag_wins_over_the_config_over_three_seconds() -> None:
    assert node_timeout(1.5, 7.0) == 1.5
    assert node_timeout(None, 7.0) == 7.0
    assert node_timeout(None, None) == 3.0


def test_one_job_answered_by_several_nodes_of_a_cluster_is_one() -> None:
    per_node = [("a", ["j1", "j2"]), ("b", ["j2", "j3"])]
    merged = merge_sorted(per_node, key=lambda j: j, identity=lambda j: j)
    assert merged == [("b", "j3"), ("a", "j2"), ("a", "j1")]
    same = [JobMatch("a", "abc"), JobMatch("b", "abc")]
    assert pick_job("ab", same, CONFIGURED) == JobMatch("a", "abc")
