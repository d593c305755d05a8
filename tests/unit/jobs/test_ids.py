from __future__ import annotations

import os
import uuid

import pytest

from joblet.errors import InvalidArgument, NotFound
from joblet.jobs.ids import is_job_id, new_job_id, resolve_prefix

IDS = [
    "0a1b2c3d-0000-4000-8000-000000000001",
    "0a1b2c3d-0000-4000-8000-000000000002",
    "ffee0000-0000-4000-8000-000000000003",
]


def test_new_job_ids_are_unique_uuid4() -> None:
    made = {new_job_id() for _ in range(1000)}  # across refills of the random pool
    assert len(made) == 1000
    for job_id in made:
        parsed = uuid.UUID(job_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == job_id and is_job_id(job_id)


def test_a_forked_child_does_not_repeat_its_parents_next_ids() -> None:
    new_job_id()  # the pool holds the parent's next ids now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then out without any cleanup
        os.write(write, new_job_id().encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0 and is_job_id(child)
    assert child != new_job_id()


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (IDS[0], True),
        (IDS[0].upper(), False),
        (IDS[0][:-1], False),
        ("not-a-uuid", False),
        ("", False),
    ],
)
def test_is_job_id(text: str, ok: bool) -> None:
    assert is_job_id(text) is ok


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("f", IDS[2]),
        ("ffee0000", IDS[2]),
        ("FFEE", IDS[2]),
        (IDS[0], IDS[0]),
        ("0a1b2c3d-0000-4000-8000-000000000002", IDS[1]),
        ("0a1b2c3d-0000-4000-8000-00000000000", None),  # ambiguous, below
    ],
)
def test_unique_prefix_resolves(prefix: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(InvalidArgument):
            resolve_prefix(prefix, IDS)
    else:
        assert resolve_prefix(prefix, IDS) == expected


def test_exact_match_wins_over_longer_ids() -> None:
    assert resolve_prefix("abc", ["abc", "abcd", "abce"]) == "abc"


def test_works_with_any_iterable_once() -> None:
    assert resolve_prefix("ff", iter(IDS)) == IDS[2]


def test_no_match_is_not_found() -> None:
    with pytest.raises(NotFound, match=r"^job 1234 not found$"):
        resolve_prefix("1234", IDS)


def test_kind_names_the_thing() -> None:
    with pytest.raises(NotFound, match=r"^workflow 12 not found$"):
        resolve_prefix("12", IDS, kind="workflow")


def test_ambiguous_names_the_candidates() -> None:
    with pytest.raises(InvalidArgument) as info:
        resolve_prefix("0a", IDS)
    message = str(info.value)
    assert "ambiguous" in message
    assert IDS[0] in message
    assert IDS[1] in message
    assert IDS[2] not in message
    assert "and" not in message.split(";", maxsplit=1)[0]
    assert message.endswith("type more characters")


def test_ambiguous_lists_five_then_counts_the_rest() -> None:
    many = [f"abcd{n:04x}" for n in range(8)]
    with pytest.raises(InvalidArgument) as info:
        resolve_prefix("abcd", many)
    message = str(info.value)
    assert all(job_id in message for job_id in many[:5])
    assert all(job_id not in message for job_id in many[5:])
    assert "and 3 more" in message


@pytest.mark.parametrize("prefix", ["", "  ", "xyz", "0a1b/..", "0a1b\0", "0a 1b", "*"])
def test_bad_prefix_is_invalid(prefix: str) -> None:
    with pytest.raises(InvalidArgument, match="job id"):
        resolve_prefix(prefix, IDS)
