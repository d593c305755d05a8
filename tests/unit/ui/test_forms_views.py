"""The run form's request and the pages' views of the API's messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from joblet.api import joblet_pb2 as pb
from joblet.ui import views
from joblet.ui.forms import FormError, run_request


def test_the_form_becomes_a_run_request() -> None:
    req = run_request({"command": "sh -c 'echo hi'", "maxMemory": "64", "name": " n ",
                       "environment": "A=1\nB=x=y\n", "volumes": "v1,v2"})  # fmt: skip
    assert (req.command, list(req.args), req.maxMemory, req.name) == (
        "sh",
        ["-c", "echo hi"],
        64,
        "n",
    )
    assert dict(req.environment) == {"A": "1", "B": "x=y"}
    assert list(req.volumes) == ["v1", "v2"]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"command": ""}, "command"),
        ({"command": "echo 'open"}, "command"),
        ({"command": "true", "maxMemory": "lots"}, "maxMemory"),
        ({"command": "true", "priority": "5000"}, "priority"),
        ({"command": "true", "environment": "NOEQUALS"}, "environment"),
    ],
)
def test_a_bad_field_is_named(form: dict[str, str], field: str) -> None:
    with pytest.raises(FormError) as caught:
        run_request(form)
    assert caught.value.field == field


def test_status_fields_are_every_field_with_secrets_masked() -> None:
    res = pb.GetJobStatusRes(uuid="u1", status="RUNNING", environment={"A": "1"},
                             secret_environment={"TOKEN": "s3cret"}, volumes=["v"])  # fmt: skip
    fields = dict(views.status_fields(res))
    assert set(fields) == {f.name for f in pb.GetJobStatusRes.DESCRIPTOR.fields}
    assert fields["secret_environment"] == "TOKEN=***"
    assert "s3cret" not in str(fields)
    assert (fields["environment"], fields["volumes"]) == ("A=1", "v")


def test_a_job_row() -> None:
    job = pb.Job(
        uuid="0123456789ab", name="n", command="echo", args=["a b"], status="COMPLETED",
        startTime="2026-01-01T00:00:00Z", endTime="2026-01-01T00:01:05Z", exitCode=3,
    )  # fmt: skip
    row = views.job_row(job, datetime(2026, 1, 1, 0, 5, tzinfo=UTC))
    assert (row.short_id, row.command, row.duration, row.exit_code) == (
        "01234567",
        "echo 'a b'",
        "1m05s",
        "3",
    )


def test_filters_live_in_the_url_query() -> None:
    query = {"status": "running,failed", "name": "web", "junk": "x"}
    req = views.list_request(query)
    assert (list(req.statuses), req.namePrefix, req.pageSize) == (["RUNNING", "FAILED"], "web", 51)
    assert views.filter_query(query, cursor="c1") == "status=running%2Cfailed&name=web&cursor=c1"
