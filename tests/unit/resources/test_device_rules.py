"""The device rules, their v1 lines and the BPF program's logic (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joblet.resources.bpf_program import build_program, evaluate, instruction_count
from joblet.resources.device_rules import BASE_RULES, DeviceRule, char, job_rules, v1_writes


def test_v1_writes_deny_everything_first_then_allow_each_rule() -> None:
    writes = v1_writes([char(1, 3, "rw"), DeviceRule("c", 136, None, "rw"), char(195, 0, "rwm")])
    assert writes == (
        ("devices.deny", "a"),
        ("devices.allow", "c 1:3 rw"),
        ("devices.allow", "c 136:* rw"),
        ("devices.allow", "c 195:0 rwm"),
    )


def test_base_rules_cover_the_jobs_dev_nodes_and_nothing_else() -> None:
    lines = {r.v1_line() for r in BASE_RULES}
    for node in ("1:3", "1:5", "1:7", "1:8", "1:9", "5:0", "5:2", "136:*"):
        assert f"c {node} rwm" in lines
    assert all(r.kind == "c" and r.major is not None for r in BASE_RULES)  # no wildcard rule
    program = build_program(BASE_RULES)
    assert evaluate(program, "c", 1, 3, "m") == 1  # a copy of /dev/null may be made
    assert evaluate(program, "c", 195, 1, "m") == 0 and evaluate(program, "b", 8, 0, "m") == 0
    assert evaluate(program, "c", 195, 1, "r") == 0 and evaluate(program, "b", 8, 0, "w") == 0


def test_job_rules_add_gpus_once() -> None:
    rules = job_rules([char(195, 0), char(195, 0), char(1, 3)])
    assert rules.count(char(195, 0)) == 1 and rules.count(char(1, 3)) == 1


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        DeviceRule("x", 1, 1)
    with pytest.raises(ValueError, match="access"):
        DeviceRule("c", 1, 1, "rx")


def test_the_two_rule_program_has_24_instructions_and_decides_as_asked() -> None:
    program = build_program([char(1, 5, "rw"), char(1, 3, "r")])
    assert instruction_count(program) == 24
    assert evaluate(program, "c", 1, 5, "rw") == 1
    assert evaluate(program, "c", 1, 3, "r") == 1
    assert evaluate(program, "c", 1, 3, "w") == 0
    assert evaluate(program, "c", 1, 9, "r") == 0
    assert evaluate(program, "b", 1, 5, "r") == 0
    assert evaluate(program, "c", 1, 5, "m") == 0


numbers = st.integers(0, 300)
rules_st = st.lists(
    st.builds(
        DeviceRule,
        st.sampled_from("cb"),
        st.none() | numbers,
        st.none() | numbers,
        st.sampled_from(["r", "w", "m", "rw", "rm", "wm", "rwm"]),
    ),
    max_size=6,
)


def allowed_by(rules: list[DeviceRule], kind: str, major: int, minor: int, access: str) -> bool:
    return any(
        r.kind == kind
        and r.major in (None, major)
        and r.minor in (None, minor)
        and set(access) <= set(r.access)
        for r in rules
    )


@given(rules_st, st.sampled_from("cb"), numbers, numbers, st.sampled_from(["r", "w", "m", "rw"]))
def test_program_allows_exactly_what_some_rule_allows(
    rules: list[DeviceRule], kind: str, major: int, minor: int, access: str
) -> None:
    program = build_program(rules)
    assert evaluate(program, kind, major, minor, access) == int(
        allowed_by(rules, kind, major, minor, access)
    )
