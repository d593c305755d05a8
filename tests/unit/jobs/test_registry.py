import pytest

from joblet.errors import InvalidArgument, NotFound
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.registry import JobRegistry

IDS = (
    "0e5c8a47-6a51-4a0e-8a57-3c1c1f1b2f3a",
    "0e5c8a47-0000-4a0e-8a57-3c1c1f1b2f3a",
    "9d2f6b10-1c3e-4f5a-9b7d-2e4f6a8b0c1d",
)


@pytest.fixture
def registry() -> JobRegistry:
    registry = JobRegistry()
    for job_id in IDS:
        registry.add(Job(id=job_id, spec=JobSpec(command="true"), status=JobStatus.SCHEDULED))
    return registry


def test_full_ids_resolve_directly(registry: JobRegistry) -> None:
    for job_id in IDS:
        assert registry.resolve(job_id).id == job_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [("9d2f", IDS[2]), (" 9D2F6B10 ", IDS[2]), (IDS[0].upper(), IDS[0]), ("0e5c8a47-6", IDS[0])],
)
def test_prefixes_and_other_spellings_still_resolve(
    registry: JobRegistry, text: str, expected: str
) -> None:
    assert registry.resolve(text).id == expected


def test_ambiguous_and_unknown_prefixes_are_refused(registry: JobRegistry) -> None:
    with pytest.raises(InvalidArgument, match="ambiguous"):
        registry.resolve("0e5c")
    with pytest.raises(NotFound):
        registry.resolve("ffff")
