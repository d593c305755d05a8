"""joblet.priorityAging, joblet.preemption, joblet.maxRequeues and
roles.maxPriority: defaults, values, and clear refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from joblet.config.loader import key_problems, parse_daemon_config
from joblet.config.model import DaemonConfig

SECURITY = {"serverCert": "c", "serverKey": "k", "caCert": "a"}


def _parse(**sections: Any) -> DaemonConfig:
    return parse_daemon_config({"security": SECURITY, **sections})


def test_defaults_age_a_step_a_minute_without_preemption() -> None:
    jobs = _parse().jobs
    assert (jobs.priority_aging_s, jobs.preemption, jobs.max_requeues) == (60.0, False, 3)
    assert dict(_parse().roles.max_priority) == {}


def test_values_are_read() -> None:
    config = _parse(
        joblet={"priorityAging": "0s", "preemption": True, "maxRequeues": 0},
        roles={"maxPriority": {"admin": 100}},
    )
    assert (config.jobs.priority_aging_s, config.jobs.preemption) == (0.0, True)
    assert config.jobs.max_requeues == 0
    assert dict(config.roles.max_priority) == {"admin": 100}


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"joblet": {"preemption": "yes"}}, "joblet.preemption must be true or false"),
        ({"joblet": {"maxRequeues": -1}}, "joblet.maxRequeues must be a whole number"),
        ({"joblet": {"priorityAging": "soon"}}, "invalid duration"),
        ({"roles": {"maxPriority": {"admin": 5000}}}, "roles.maxPriority.admin"),
        ({"roles": {"maxPriority": [1]}}, "roles.maxPriority must map"),
    ],
)
def test_bad_values_are_refused_by_name(sections: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _parse(**sections)


def test_an_unknown_role_under_max_priority_is_an_unknown_key() -> None:
    problems = key_problems({"roles": {"maxPriority": {"admins": 5}}}, Path("f.yml"))
    assert problems == ["f.yml: roles.maxPriority.admins: unknown key (did you mean admin?)"]
