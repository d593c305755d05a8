"""rnx's side of priorities: the run flags, the PRIO column, the status lines."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.cli.job_args import build_run_request
from joblet.cli.job_list import render_list
from joblet.cli.job_view import render_status
from joblet.cli.main import build_parser
from joblet.client.errors import CliError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_run_flags_fill_the_request() -> None:
    args = parse("job", "run", "--priority", "-7", "--preemptible", "--on-preempt", "stop",
                 "--stop-grace", "1s", "true")  # fmt: skip
    request = build_run_request(args, [], {})
    assert (request.priority, request.preemptible, request.onPreempt) == (-7, True, "stop")
    assert request.stopGracePeriod == "1s"


def test_without_flags_the_defaults_go_out() -> None:
    request = build_run_request(parse("run", "true"), [], {})
    assert (request.priority, request.preemptible, request.onPreempt) == (0, False, "")
    assert request.stopGracePeriod == ""


@pytest.mark.parametrize("value", ["1001", "-1001", "high"])
def test_a_priority_out_of_range_is_a_usage_error(value: str) -> None:
    with pytest.raises(CliError, match="argument --priority: expected") as info:
        parse("run", "--priority", value, "true")
    assert info.value.exit_code == 2


def test_on_preempt_needs_preemptible() -> None:
    with pytest.raises(CliError, match="--on-preempt needs --preemptible"):
        build_run_request(parse("run", "--on-preempt", "stop", "true"), [], {})


def _job(uuid: str, priority: int) -> pb.Job:
    return pb.Job(uuid=uuid, name="", command="true", status="QUEUED", priority=priority)


def test_the_prio_column_shows_only_when_a_job_has_a_priority() -> None:
    plain = render_list([_job("a" * 36, 0), _job("b" * 36, 0)], NOW, 100, UTC)
    assert "PRIO" not in plain
    table = render_list([_job("a" * 36, 5), _job("b" * 36, 0)], NOW, 100, UTC)
    header, first, second = table.splitlines()
    assert header.split()[:4] == ["ID", "NAME", "STATUS", "PRIO"]
    assert first.split()[:4] == ["aaaaaaaa", "-", "QUEUED", "5"]
    assert second.split()[3] == "0"


def test_status_shows_priority_preemption_and_why_it_waited() -> None:
    res = pb.GetJobStatusRes(
        uuid="x", status="QUEUED", command="true", priority=-3, preemptible=True,
        onPreempt="requeue", preemptions=2, waitReason="preempted by y, requeued",
        stopGracePeriod="1s",
    )  # fmt: skip
    lines = render_status(res, NOW, UTC)
    assert "Priority: -3" in lines
    assert "Preemptible: yes (then requeued); preempted 2 time(s)" in lines
    assert "Waited: preempted by y, requeued" in lines
    assert "Stop Grace Period: 1s" in lines
    plain = render_status(pb.GetJobStatusRes(uuid="x", status="RUNNING", command="t"), NOW, UTC)
    assert "Priority: 0" in plain and not any(line.startswith("Preempt") for line in plain)
