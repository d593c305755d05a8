from __future__ import annotations

import pytest

from joblet.workflows.record import (
    FileMeta,
    RecordError,
    WorkflowRecord,
    group_loaded,
    record_from_json,
    record_to_json,
    start_key,
)

RECORD = WorkflowRecord(
    id="wf-1",
    name="etl",
    yaml="name: etl\njobs: {}\n",
    jobs={"extract": "j-1", "load": "j-2"},
    created_at=10.5,
    files=(FileMeta("extract.py", 12, 0o644, False),),
    stopped_by_user=True,
)


def test_a_record_round_trips_keeping_job_order() -> None:
    back = record_from_json(record_to_json(RECORD))
    assert back == RECORD
    assert list(back.jobs) == ["extract", "load"]


def test_start_marks_fold_into_their_workflow() -> None:
    entries = [
        (start_key("wf-1", "extract"), b"1"),
        ("wf-1", record_to_json(RECORD)),
        (start_key("wf-9", "x"), b"1"),  # a mark whose workflow was deleted
        ("wf-bad", b"{not json"),
    ]
    records, problems = group_loaded(entries)
    assert [r.id for r in records] == ["wf-1"]
    assert records[0].started == frozenset({"extract"})
    assert len(problems) == 1 and "wf-bad" in problems[0]


def test_an_unreadable_record_is_a_clear_error() -> None:
    with pytest.raises(RecordError, match="unreadable workflow record"):
        record_from_json(b'{"id": "x"}')
