"""Every example workflow validates; every invalid one gives exactly the
problems written next to it, through the validator and through rnx."""

from __future__ import annotations

from pathlib import Path

import pytest

from joblet.cli.main import main
from joblet.cli.workflow import check_workflow
from joblet.workflows.model import Known
from joblet.workflows.yamlspec import WorkflowInvalid, parse_workflow

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "workflows"
VALID = sorted(p for p in EXAMPLES.rglob("*.yaml") if p.parent.name != "invalid")
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert len(VALID) >= 4 and len(INVALID) >= 5


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_each_example_is_valid_with_its_uploads_next_to_it(path: Path) -> None:
    spec, problems = check_workflow(path, path.read_text())
    assert problems == [] and spec is not None and spec.jobs


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_each_invalid_example_gives_its_expected_problems(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = path.with_suffix(".expected").read_text().splitlines()
    with pytest.raises(WorkflowInvalid) as caught:
        parse_workflow(path.read_text())
    assert [str(p) for p in caught.value.problems] == expected
    assert main(["workflow", "validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"rnx: error: {path} is invalid ({len(expected)} problem{'s' * (len(expected) > 1)}):",
        *expected,
    ]


def test_the_runtime_example_needs_its_runtime_on_the_server() -> None:
    text = (EXAMPLES / "etl" / "etl-python.yaml").read_text()
    parse_workflow(text, known=Known(runtimes=frozenset({"python-3.11"})))
    with pytest.raises(WorkflowInvalid, match=r'runtime "python-3\.11" does not exist'):
        parse_workflow(text, known=Known(runtimes=frozenset()))
