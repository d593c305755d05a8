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


def _named(registry: JobRegistry, job_id: str, name: str) -> None:
    spec = JobSpec(command="true", name=name)
    registry.add(Job(id=job_id, spec=spec, status=JobStatus.RUNNING))


def test_a_unique_name_resolves_to_its_job(registry: JobRegistry) -> None:
    _named(registry, "aaaa0000-0000-4000-8000-000000000001", "backup")
    assert registry.resolve("backup").id == "aaaa0000-0000-4000-8000-000000000001"


def test_a_name_wins_over_an_id_prefix_it_also_is(registry: JobRegistry) -> None:
    # "9d2f" is a prefix of IDS[2], but a job is named exactly that.
    _named(registry, "aaaa0000-0000-4000-8000-000000000002", "9d2f")
    assert registry.resolve("9d2f").id == "aaaa0000-0000-4000-8000-000000000002"


def test_a_shared_name_is_refused_listing_the_candidates(registry: JobRegistry) -> None:
    _named(registry, "aaaa0000-0000-4000-8000-000000000003", "web")
    _named(registry, "aaaa0000-0000-4000-8000-000000000004", "web")
    with pytest.raises(InvalidArgument, match="ambiguous") as caught:
        registry.resolve("web")
    assert "aaaa0000-0000-4000-8000-000000000003" in str(caught.value)
    assert "aaaa0000-0000-4000-8000-000000000004" in str(caught.value)


def test_an_unknown_name_is_not_found(registry: JobRegistry) -> None:
    with pytest.raises(NotFound, match="no job has that id or name"):
        registry.resolve("no-such-job")
    with pytest.raises(InvalidArgument, match="required"):
        registry.resolve("  ")
