"""Requirements of a job given to RunJob (pure): `requirements` entries as
expressions over job ids, and whether they hold.

An entry is `jobUuid` with `status` (COMPLETED when empty; any status word
of a workflow requirement, FINISHED included), or an `expression` over job
ids (or their unique prefixes), the language of workflow requirements. All
entries must hold, like a workflow job's `requires`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from joblet.errors import InvalidArgument
from joblet.workflows.expressions import (
    ExpressionError,
    Requirement,
    evaluate,
    jobs_of,
    parse_expression,
    render,
)


class RequirementEntry(Protocol):
    @property
    def jobUuid(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def expression(self) -> str: ...


def requirement_texts(entries: Sequence[RequirementEntry]) -> list[str]:
    """Each entry as expression text; InvalidArgument for an empty one."""
    texts: list[str] = []
    for index, entry in enumerate(entries):
        if entry.expression.strip():
            if entry.jobUuid:
                raise InvalidArgument(
                    f"requirements[{index}]: give jobUuid (with status) or expression, not both"
                )
            texts.append(entry.expression.strip())
        elif entry.jobUuid:
            texts.append(f"{entry.jobUuid}={entry.status.strip().upper() or 'COMPLETED'}")
        else:
            raise InvalidArgument(
                f"requirements[{index}]: give jobUuid (with status) or expression"
            )
    return texts


def parse_requirements(texts: Sequence[str]) -> tuple[Requirement, ...]:
    """The texts parsed; InvalidArgument listing every one that does not parse."""
    parsed: list[Requirement] = []
    problems: list[str] = []
    for index, text in enumerate(texts):
        try:
            parsed.append(parse_expression(text))
        except ExpressionError as exc:
            problems.append(f"requirements[{index}] {text!r}: {exc}")
    if problems:
        raise InvalidArgument("; ".join(problems))
    return tuple(parsed)


def named_jobs(requirements: Sequence[Requirement]) -> list[str]:
    """The job ids (as written) the requirements name, first mention first."""
    return list(dict.fromkeys(atom.job for r in requirements for atom in jobs_of(r)))


def verdict(requirements: Sequence[Requirement], statuses: Mapping[str, str]) -> bool | str | None:
    """True once every requirement holds; the reason once one can no longer
    hold; None while undecided. `statuses`: each named job's status."""
    met = True
    for index, requirement in enumerate(requirements):
        value = evaluate(requirement, statuses)
        if value is False:
            ended = ", ".join(
                f"{atom.job} is {statuses[atom.job]}"
                for atom in jobs_of(requirement)
                if atom.job in statuses
            )
            return f'requirements[{index}] "{render(requirement)}" can no longer hold: {ended}'
        met = met and value is True
    return True if met else None
