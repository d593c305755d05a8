from __future__ import annotations

from dataclasses import dataclass

import pytest

from joblet.errors import InvalidArgument
from joblet.workflows.waits import named_jobs, parse_requirements, requirement_texts, verdict

A = "0a1b2c3d-0000-4000-8000-00000000000a"
B = "0a1b2c3d-0000-4000-8000-00000000000b"


@dataclass
class Entry:
    jobUuid: str = ""
    status: str = ""
    expression: str = ""


def test_entries_become_expressions() -> None:
    texts = requirement_texts([Entry(A), Entry(B, "finished"), Entry(expression=f"{A}=FAILED")])
    assert texts == [f"{A}=COMPLETED", f"{B}=FINISHED", f"{A}=FAILED"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [(Entry(), "give jobUuid"), (Entry(A, expression=f"{B}=FAILED"), "not both")],
)
def test_bad_entries_are_refused(entry: Entry, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        requirement_texts([entry])


def test_every_unparsable_entry_is_named() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_requirements([f"{A}=DONE", "ok=COMPLETED", f"{B} IN ("])
    assert "requirements[0]" in str(info.value) and "requirements[2]" in str(info.value)
    assert "requirements[1]" not in str(info.value)


def test_verdict_is_three_valued_and_names_what_broke_it() -> None:
    reqs = parse_requirements([f"{A}=COMPLETED OR {B}=COMPLETED", f"{A}!=STOPPED"])
    assert named_jobs(reqs) == [A, B]
    assert verdict(reqs, {}) is None
    assert verdict(reqs, {B: "COMPLETED"}) is None  # the second still waits on A
    assert verdict(reqs, {A: "COMPLETED"}) is True
    broke = verdict(reqs, {A: "STOPPED"})
    assert isinstance(broke, str)
    assert broke.startswith("requirements[1]") and f"{A} is STOPPED" in broke
