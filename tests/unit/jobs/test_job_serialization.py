import json
from dataclasses import replace

import pytest

from joblet.jobs.model import Job, JobSpec, JobStatus, Upload
from joblet.jobs.serialization import (
    SCHEMA_VERSION,
    SerializationError,
    job_from_dict,
    job_from_json,
    job_to_dict,
    job_to_json,
)


def full_job() -> Job:
    spec = JobSpec(
        command="python3",
        args=("-c", "print('héllo')"),
        name="build ✓",
        max_cpu=150,
        cpu_cores="0-1",
        max_memory_mb=512,
        max_iobps=1000,
        environment={"A": "1", "Ü": "ß"},
        secret_environment={"TOKEN": "s3cret"},
        uploads=(
            Upload(path="src/main.py", content=b"print(1)\n", mode=0o644, is_directory=False),
            Upload(path="src", content=b"", mode=0o755, is_directory=True),
        ),
        schedule="2030-01-01T00:00:00Z",
        network="bridge",
        volumes=("data", "cache"),
        runtime="python-3.11",
        workdir="/work",
        gpu_count=1,
        gpu_memory_mb=2048,
        workflow_uuid="wf-1",
        dependencies=("a", "b"),
        priority=-7,
        preemptible=True,
        on_preempt="stop",
        stop_grace_s=1.5,
    )
    return Job(
        id="job-1",
        spec=spec,
        status=JobStatus.COMPLETED,
        node_id="node-a",
        created_at=1700000000.25,
        scheduled_at=1700000100.0,
        started_at=1700000101.5,
        ended_at=1700000200.75,
        exit_code=3,
        end_reason="exit code 3",
        pid=4242,
        upload_names=("src/main.py",),
        queued_at=1700000000.5,
        wait_reason="preempted by job-0, requeued",
        preemptions=2,
        preempted_for="job-9",
        requeue_due=True,
    )


def test_round_trip_keeps_everything_but_upload_content() -> None:
    job = full_job()
    loaded = job_from_json(job_to_json(job))
    expected_uploads = tuple(Upload(u.path, b"", u.mode, u.is_directory) for u in job.spec.uploads)
    assert loaded.spec.uploads == expected_uploads
    assert loaded == Job(
        **{**job.__dict__, "spec": JobSpec(**{**job.spec.__dict__, "uploads": expected_uploads})}
    )


def test_record_is_plain_json_with_version_and_upload_sizes() -> None:
    data = json.loads(job_to_json(full_job()))
    assert data["_v"] == SCHEMA_VERSION
    assert data["status"] == "COMPLETED"
    assert "content" not in data["spec"]["uploads"][0]
    assert data["spec"]["uploads"][0]["content_size"] == 9
    assert data["spec"]["args"] == ["-c", "print('héllo')"]


def test_unknown_keys_are_ignored() -> None:
    data = job_to_dict(full_job())
    data["added_in_v9"] = {"x": 1}
    data["spec"]["future_option"] = True
    assert job_from_dict(data) == job_from_dict(job_to_dict(full_job()))


def test_missing_keys_take_defaults() -> None:
    job = job_from_dict({"id": "old", "status": "QUEUED", "spec": {"command": "true"}})
    assert job == Job(id="old", spec=JobSpec(command="true"), status=JobStatus.QUEUED)


def test_ints_stored_as_floats_accepted_for_float_fields() -> None:
    data = job_to_dict(full_job())
    data["created_at"] = 5
    assert job_from_dict(data).created_at == 5.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "QUEUED", "spec": {"command": "x"}}, "'id' is missing"),
        ({"id": "j", "status": "NAPPING", "spec": {"command": "x"}}, "unknown JobStatus"),
        ({"id": "j", "status": "QUEUED", "spec": {"command": 7}}, "expected str"),
        ({"id": "j", "status": "QUEUED", "spec": {"command": "x", "args": "ls"}}, "list"),
        ({"id": "j", "status": "QUEUED", "spec": {"command": "x"}, "pid": True}, "bool"),
    ],
)
def test_bad_records_raise_serialization_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        job_from_dict(data)


def test_bad_json_raises_serialization_error() -> None:
    with pytest.raises(SerializationError, match="not valid JSON"):
        job_from_json(b"{not json")
    with pytest.raises(SerializationError, match="must be an object"):
        job_from_json(b"[1, 2]")


def test_every_model_field_is_stored() -> None:
    import dataclasses

    # A field at its default is left out of the record (smaller records load
    # faster); every other one is stored, and the record gives the job back.
    job = full_job()
    data = job_to_dict(job)
    for cls, value, stored in ((Job, job, data), (JobSpec, job.spec, data["spec"])):
        for field in dataclasses.fields(cls):
            if field.name not in stored:
                default = (
                    field.default
                    if field.default is not dataclasses.MISSING
                    else field.default_factory()  # type: ignore[misc]
                )
                assert getattr(value, field.name) == default, field.name
    assert job_from_dict(data).spec.environment == job.spec.environment


def test_fields_at_their_default_are_left_out_and_read_back_as_defaults() -> None:
    job = Job(id="j-1", spec=JobSpec(command="true"), status=JobStatus.COMPLETED)
    data = job_to_dict(job)
    assert set(data) == {"id", "spec", "status", "_v"}
    assert data["spec"] == {"command": "true"}
    assert job_from_json(job_to_json(job)) == job
    # a record that stores every field (as earlier versions wrote) reads the same
    full = job_to_dict(replace(job, status=JobStatus.RUNNING, node_id="n"))
    assert job_from_dict(full).node_id == "n"


def test_record_holds_only_json_data_and_shares_nothing_with_the_job() -> None:
    job = replace(full_job(), run_as=(1000, 100))
    job = replace(job, spec=replace(job.spec, run_as=(5, 6)))
    data = job_to_dict(job)
    assert data["run_as"] == [1000, 100]
    assert data["spec"]["run_as"] == [5, 6]
    assert data["upload_names"] == ["src/main.py"]
    assert data["spec"]["volumes"] == ["data", "cache"]
    assert data["spec"]["uploads"][1] == {
        "path": "src", "mode": 0o755, "is_directory": True, "content_size": 0
    }  # fmt: skip
    assert json.loads(json.dumps(data)) == data  # lists and dicts only, no tuples or enums
    data["spec"]["environment"]["A"] = "changed"
    assert job.spec.environment["A"] == "1"
    unset = job_to_dict(replace(job, spec=replace(job.spec, run_as=None)))
    assert "run_as" not in unset["spec"]  # None is its default: left out
