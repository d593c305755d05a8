"""`priority` in a workflow's YAML: per workflow and per job, the job's wins."""

from __future__ import annotations

import pytest

from joblet.workflows.yamlspec import WorkflowInvalid, parse_workflow

YAML = """
priority: 20
jobs:
  extract:
    command: "true"
  urgent:
    command: "true"
    priority: -3
"""


def test_jobs_inherit_the_workflows_priority_and_their_own_wins() -> None:
    spec = parse_workflow(YAML)
    assert spec.job("extract").priority == 20
    assert spec.job("urgent").priority == -3


def test_without_priority_jobs_have_zero() -> None:
    spec = parse_workflow('jobs:\n  a:\n    command: "true"\n')
    assert spec.job("a").priority == 0


def test_a_bad_priority_is_a_problem_with_its_line() -> None:
    text = 'priority: 5000\njobs:\n  a:\n    command: "true"\n    priority: high\n'
    with pytest.raises(WorkflowInvalid) as caught:
        parse_workflow(text)
    problems = [str(p) for p in caught.value.problems]
    assert problems == [
        "line 1: priority: priority 5000 is out of range: give -1000..1000",
        "line 5: jobs.a.priority: must be a whole number, got text",
    ]
