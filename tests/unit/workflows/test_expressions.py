"""Requirement expressions: precedence, IN, errors with columns, and the
three-valued truth tables."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joblet.workflows.expressions import (
    And,
    Atom,
    Expr,
    ExpressionError,
    Not,
    Or,
    evaluate,
    parse_expression,
    render,
)

from .strategies import expressions


def shape(text: str) -> object:
    """The parse tree without columns, for comparing structure."""

    def strip(expr: object) -> object:
        if isinstance(expr, Atom):
            return ("atom", expr.job, expr.statuses, expr.negated)
        if isinstance(expr, Not):
            return ("not", strip(expr.operand))
        assert isinstance(expr, And | Or)
        return (type(expr).__name__.lower(), *(strip(o) for o in expr.operands))

    return strip(parse_expression(text))


def test_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    assert shape("NOT a=FAILED AND b=COMPLETED OR c=STOPPED") == (
        "or",
        ("and", ("not", ("atom", "a", ("FAILED",), False)), ("atom", "b", ("COMPLETED",), False)),
        ("atom", "c", ("STOPPED",), False),
    )
    assert shape("a=FAILED OR b=FAILED AND c=FAILED") == (
        "or",
        ("atom", "a", ("FAILED",), False),
        ("and", ("atom", "b", ("FAILED",), False), ("atom", "c", ("FAILED",), False)),
    )


def test_parentheses_override_precedence() -> None:
    assert shape("(a=FAILED OR b=FAILED) AND c=FAILED") == (
        "and",
        ("or", ("atom", "a", ("FAILED",), False), ("atom", "b", ("FAILED",), False)),
        ("atom", "c", ("FAILED",), False),
    )
    assert shape("NOT (a=FAILED AND b=FAILED)")[0] == "not"


def test_in_not_in_and_not_equal() -> None:
    assert shape("x IN (FAILED, STOPPED)") == ("atom", "x", ("FAILED", "STOPPED"), False)
    assert shape("x NOT IN (CANCELED)") == ("atom", "x", ("CANCELED",), True)
    assert shape("x!=COMPLETED") == ("atom", "x", ("COMPLETED",), True)
    assert shape("t-a.b_c = FINISHED") == ("atom", "t-a.b_c", ("FINISHED",), False)


@pytest.mark.parametrize(
    "text",
    [
        "a=COMPLETED",
        "NOT load=COMPLETED",
        "a=COMPLETED OR b=FAILED AND NOT c IN (FAILED, STOPPED)",
        "(a=COMPLETED OR b=FAILED) AND c NOT IN (CANCELED, FAILED)",
        "NOT (a=FAILED AND b!=FINISHED)",
        "NOT NOT a=FAILED",
        "(a=FAILED AND b=FAILED) AND c=FAILED",
    ],
)
def test_render_parses_back_to_the_same_expression(text: str) -> None:
    assert shape(render(parse_expression(text))) == shape(text)


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("", 1, "empty expression"),
        ("a=", 3, "expected a status, got the end"),
        ("a=DONE", 3, 'unknown status "DONE"'),
        ("a=completed", 3, 'did you mean "COMPLETED"'),
        ("a IN FAILED", 6, "expected '(' after IN"),
        ("a IN (FAILED STOPPED)", 14, "expected ',' or ')'"),
        ("(a=FAILED", 10, "expected ')'"),
        ("a=FAILED b=FAILED", 10, "expected AND, OR or the end, got 'b'"),
        ("a ~ b", 3, "unexpected character '~'"),
        ("a NOT", 6, "expected '=', '!=', IN or NOT IN"),
        ("AND a=FAILED", 1, "expected a job name"),
        ("a=FAILED AND", 13, "expected a job name"),
        ("a", 2, "expected '=', '!=', IN or NOT IN, got the end"),
    ],
)
def test_errors_name_the_column(text: str, column: int, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert caught.value.column == column
    assert words in caught.value.message


def test_deep_nesting_and_long_text_are_refused_not_crashing() -> None:
    with pytest.raises(ExpressionError, match="nested deeper"):
        parse_expression("(" * 500 + "a=FAILED" + ")" * 500)
    with pytest.raises(ExpressionError, match="longer than"):
        parse_expression("a=FAILED OR " * 1000 + "a=FAILED")


STATES = ("COMPLETED", "FAILED", "STOPPED", "CANCELED", None)  # None: not final yet


def kleene_not(x: bool | None) -> bool | None:
    return None if x is None else not x


def kleene_and(x: bool | None, y: bool | None) -> bool | None:
    if x is False or y is False:
        return False
    return None if x is None or y is None else True


def kleene_or(x: bool | None, y: bool | None) -> bool | None:
    if x is True or y is True:
        return True
    return None if x is None or y is None else False


def statuses(a: str | None, b: str | None) -> dict[str, str]:
    found = {"a": a, "b": b}
    return {k: v for k, v in found.items() if v is not None}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(STATES, STATES)))
def test_truth_tables_follow_kleene_logic(a: str | None, b: str | None) -> None:
    env = statuses(a, b)
    left = None if a is None else a == "COMPLETED"
    right = None if b is None else b == "COMPLETED"
    assert evaluate(parse_expression("a=COMPLETED"), env) is left
    assert evaluate(parse_expression("NOT a=COMPLETED"), env) is kleene_not(left)
    assert evaluate(parse_expression("a=COMPLETED AND b=COMPLETED"), env) is kleene_and(left, right)
    assert evaluate(parse_expression("a=COMPLETED OR b=COMPLETED"), env) is kleene_or(left, right)


@pytest.mark.parametrize("status", STATES)
def test_atoms_are_unknown_until_final_and_finished_matches_any_final(status: str | None) -> None:
    env = statuses(status, None)
    final = status is not None
    assert evaluate(parse_expression("a=FINISHED"), env) is (True if final else None)
    assert evaluate(parse_expression("a!=FINISHED"), env) is (False if final else None)
    in_list = evaluate(parse_expression("a IN (FAILED, STOPPED)"), env)
    assert in_list is (status in ("FAILED", "STOPPED") if final else None)
    not_in = evaluate(parse_expression("a NOT IN (FAILED, STOPPED)"), env)
    assert not_in is (status not in ("FAILED", "STOPPED") if final else None)


def test_running_and_pending_count_as_unknown() -> None:
    expr = parse_expression("a=COMPLETED OR b=COMPLETED")
    assert evaluate(expr, {"a": "RUNNING", "b": "PENDING"}) is None
    assert evaluate(expr, {"a": "RUNNING", "b": "COMPLETED"}) is True
    assert evaluate(parse_expression("a=COMPLETED AND b=COMPLETED"), {"a": "FAILED"}) is False


# Properties over random expressions ----------------------------------------

JOBS = ["a", "b-1", "c.2"]
OUTCOMES = st.sampled_from(STATES)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(expr=expressions(JOBS))
def test_rendered_text_parses_back_to_the_same_tree(expr: Expr) -> None:
    assert strip_columns(parse_expression(render(expr))) == strip_columns(expr)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    expr=expressions(JOBS),
    partial=st.fixed_dictionaries({job: OUTCOMES for job in JOBS}),
    completion=st.fixed_dictionaries({job: st.sampled_from(STATES[:-1]) for job in JOBS}),
)
def test_a_decided_value_never_changes_as_more_jobs_end(
    expr: Expr, partial: dict[str, str | None], completion: dict[str, str]
) -> None:
    """What lets the executor start or cancel at once: once true or false,
    an expression keeps that value whatever the unknown jobs end with; and
    once every job has ended it is decided."""
    known = {job: s for job, s in partial.items() if s is not None}
    full = {**completion, **known}
    now = evaluate(expr, known)
    assert evaluate(expr, full) is not None
    if now is not None:
        assert evaluate(expr, full) is now


def strip_columns(expr: Expr) -> Expr:
    if isinstance(expr, Atom):
        return Atom(expr.job, expr.statuses, expr.negated)
    if isinstance(expr, Not):
        return Not(strip_columns(expr.operand))
    return type(expr)(tuple(strip_columns(o) for o in expr.operands))
