from __future__ import annotations

from joblet.daemon.runtime_service import chunk, validate
from joblet.runtimes.events import LogData, Outcome, Progress


def test_validate_a_reference() -> None:
    res = validate("python:3.11-ml@x86_64")
    assert res.valid
    assert res.normalizedSpec == "python-3.11-ml"
    assert (res.specInfo.language, res.specInfo.version) == ("python", "3.11")
    assert list(res.specInfo.variants) == ["ml"]
    assert res.specInfo.architecture == "amd64"


def test_validate_bad_references() -> None:
    for bad in ("../x", "a/b", "a\0b", "python:3.11@mars"):
        res = validate(bad)
        assert not res.valid
        assert res.message


def test_validate_a_whole_spec_lists_every_problem_by_line() -> None:
    res = validate("name: x\nbogus: 1\nmounts: [{source: /etc, target: /}]\n")
    assert not res.valid
    assert "line 2, column 1" in res.message
    assert "line 3" in res.message
    assert "'test' is required" in res.message
    good = validate("name: python-3.11\nlanguage: python\nversion: '3.11'\ntest: {command: sh}\n")
    assert good.valid
    assert good.normalizedSpec == "python-3.11"


def test_events_to_chunks() -> None:
    assert chunk(Progress(4, "build: job j", job_id="j")).progress.build_job_uuid == "j"
    progress = chunk(Progress(2, "fetch: 3 files", 10, 20)).progress
    assert (progress.step, progress.total_steps, progress.bytes_done, progress.bytes_total) == (
        2, 6, 10, 20,
    )  # fmt: skip
    assert chunk(LogData(b"out")).log.data == b"out"
    result = chunk(Outcome(True, "tools", "ok", "job-1", "/x", 42)).result
    assert (result.success, result.runtime_spec, result.build_job_uuid, result.size_bytes) == (
        True, "tools", "job-1", 42,
    )  # fmt: skip
