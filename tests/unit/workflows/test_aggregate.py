"""A workflow's status from its jobs': the cases of the format's ETL."""

from __future__ import annotations

import pytest

from joblet.workflows.aggregate import workflow_status
from joblet.workflows.yamlspec import parse_workflow

from .test_yamlspec import ETL

SPEC = parse_workflow(ETL)
GOOD_NIGHT = {
    "extract": "COMPLETED",
    "t-a": "COMPLETED",
    "t-b": "COMPLETED",
    "load": "COMPLETED",
    "notify": "CANCELED",  # its condition did not hold: no failure
    "cleanup": "COMPLETED",
}


def with_(**changes: str) -> dict[str, str]:
    return {**GOOD_NIGHT, **{k.replace("_", "-"): v for k, v in changes.items()}}


@pytest.mark.parametrize(
    ("statuses", "stopped", "expected"),
    [
        ({}, False, "PENDING"),
        ({name: "PENDING" for name in GOOD_NIGHT}, False, "PENDING"),
        ({"extract": "RUNNING"}, False, "RUNNING"),
        ({"extract": "QUEUED"}, False, "RUNNING"),
        (with_(cleanup="PENDING"), False, "RUNNING"),
        (GOOD_NIGHT, False, "COMPLETED"),
        # extract failed: nothing downstream accepted it.
        (
            with_(
                extract="FAILED",
                t_a="CANCELED",
                t_b="CANCELED",
                load="CANCELED",
                notify="COMPLETED",
            ),
            False,
            "FAILED",
        ),
        # load failed and notify ran because of it: handled.
        (with_(load="FAILED", notify="COMPLETED"), False, "COMPLETED"),
        (with_(load="STOPPED", notify="COMPLETED"), False, "COMPLETED"),
        # t-a stopped: load canceled, nothing accepted the stop.
        (with_(t_a="STOPPED", load="CANCELED", notify="COMPLETED"), False, "FAILED"),
        # the user stopped the workflow: STOPPED once something had started...
        (with_(load="STOPPED", notify="CANCELED", cleanup="CANCELED"), True, "STOPPED"),
        # ...CANCELED when nothing had.
        ({name: "CANCELED" for name in GOOD_NIGHT}, True, "CANCELED"),
    ],
)
def test_etl_cases(statuses: dict[str, str], stopped: bool, expected: str) -> None:
    assert workflow_status(statuses, SPEC, stopped) == expected


HANDLERS = parse_workflow(
    """\
jobs:
  work: {command: x}
  always: {command: x, requires: [{work: FINISHED}]}
  on-fail: {command: x, requires: [{work: [FAILED, STOPPED]}]}
"""
)


def test_a_dependent_that_runs_either_way_does_not_hide_a_failure() -> None:
    statuses = {"work": "FAILED", "always": "COMPLETED", "on-fail": "CANCELED"}
    assert workflow_status(statuses, HANDLERS, False) == "FAILED"


def test_a_dependent_that_runs_because_of_the_failure_accepts_it() -> None:
    statuses = {"work": "FAILED", "always": "COMPLETED", "on-fail": "COMPLETED"}
    assert workflow_status(statuses, HANDLERS, False) == "COMPLETED"
    # The handler's own failure is a failure of the workflow.
    statuses["on-fail"] = "FAILED"
    assert workflow_status(statuses, HANDLERS, False) == "FAILED"


def test_a_failed_job_without_dependents_fails_the_workflow() -> None:
    spec = parse_workflow("jobs:\n  a: {command: x}\n  b: {command: x}\n")
    assert workflow_status({"a": "COMPLETED", "b": "FAILED"}, spec, False) == "FAILED"
    assert workflow_status({"a": "COMPLETED", "b": "CANCELED"}, spec, False) == "COMPLETED"
