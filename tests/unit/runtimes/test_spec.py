from __future__ import annotations

import textwrap

import pytest

from joblet.runtimes.spec import (
    MAX_SPEC_BYTES,
    BuildSpec,
    MountSpec,
    SelfTest,
    SpecError,
    parse_spec,
    spec_problems,
)

GOOD = """\
name: python-3.11
language: python
version: "3.11"
description: Debian's Python 3.11 with numpy
requirements: {architectures: [amd64, aarch64], gpu: false}
packages: [numpy]
build: {script: build.sh, timeout: 20m, max_memory: 2048, network: none}
environment:
  PATH: /opt/runtime/venv/bin:${PATH}
mounts: [{source: venv/share/man, target: /usr/local/share/man}]
test: {command: python3, args: ["-c", "import numpy"], timeout: 30s}
"""


def test_the_full_example_parses() -> None:
    spec = parse_spec(GOOD)
    assert spec.name == "python-3.11"
    assert spec.version == "3.11"
    assert spec.architectures == ("amd64", "arm64")
    assert spec.build == BuildSpec("build.sh", 1200.0, 2048, "none")
    assert spec.environment == (("PATH", "/opt/runtime/venv/bin:${PATH}"),)
    assert spec.mounts == (MountSpec("venv/share/man", "/usr/local/share/man"),)
    assert spec.test == SelfTest("python3", ("-c", "import numpy"), 30.0)


def test_minimal_spec_gets_defaults() -> None:
    spec = parse_spec("name: tools\ntest: {command: 'true'}\n")
    assert spec.build == BuildSpec()
    assert spec.architectures == ()
    assert not spec.gpu


def _replace(line_start: str, new: str) -> str:
    lines = GOOD.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(line_start))
    lines[index] = new
    return "\n".join(lines) + "\n"


# (spec text, line, a fragment of the message)
BAD = [
    (_replace("name:", "name: ../x"), 1, "invalid runtime name"),
    (_replace("name:", "name: a/b"), 1, "invalid runtime name"),
    (_replace("name:", "nam: x"), 1, "unknown key 'nam'"),
    (_replace("version:", "version: 3.10"), 3, "quote it"),
    (_replace("language:", "language: Py thon"), 2, "not allowed"),
    (_replace("requirements:", "requirements: {architectures: [mars]}"), 5, "architecture"),
    (_replace("requirements:", "requirements: {gpu: maybe}"), 5, "true or false"),
    (_replace("requirements:", "requirements: {cuda: 12}"), 5, "unknown key 'cuda'"),
    (_replace("packages:", "packages: numpy"), 6, "must be a list"),
    (_replace("build:", "build: {script: /bin/sh}"), 7, "relative"),
    (_replace("build:", "build: {script: ../x.sh}"), 7, "'..'"),
    (_replace("build:", "build: {timeout: soon}"), 7, "invalid duration"),
    (_replace("build:", "build: {max_memory: -5}"), 7, "negative"),
    (_replace("build:", "build: {memory: 5}"), 7, "unknown key 'memory'"),
    (_replace("  PATH:", "  1BAD: x"), 9, "not a valid variable name"),
    (_replace("  PATH:", "  PATH: ${SECRET_TOKEN}:/x"), 9, "${SECRET_TOKEN}"),
    (_replace("  PATH:", "  PATH: ${JOB_ID}"), 9, "${JOB_ID}"),
    (_replace("mounts:", "mounts: [{source: /etc, target: /x}]"), 10, "relative"),
    (_replace("mounts:", "mounts: [{source: ../../etc, target: /x}]"), 10, "'..'"),
    (_replace("mounts:", "mounts: [{source: a, target: /}]"), 10, "must not be /"),
    (_replace("mounts:", "mounts: [{source: a, target: /proc/x}]"), 10, "under /proc"),
    (_replace("mounts:", "mounts: [{source: a, target: /work}]"), 10, "under /work"),
    (_replace("mounts:", "mounts: [{source: a, target: /tmp}]"), 10, "under /tmp"),
    (_replace("mounts:", "mounts: [{source: a, target: /dev/shm}]"), 10, "under /dev"),
    (_replace("mounts:", "mounts: [{source: a, target: /sys}]"), 10, "under /sys"),
    (_replace("mounts:", "mounts: [{source: a, target: /volumes/v}]"), 10, "under /volumes"),
    (_replace("mounts:", "mounts: [{source: a, target: /opt/runtime}]"), 10, "/opt/runtime"),
    (_replace("mounts:", "mounts: [{source: a, target: usr/x}]"), 10, "absolute"),
    (_replace("mounts:", "mounts: [{source: a}]"), 10, "'target' is required"),
    (_replace("test:", "tests: {command: x}"), 11, "unknown key 'tests'"),
    (_replace("test:", "test: {args: [x]}"), 11, "'command' is required"),
    (_replace("test:", "test: python3"), 11, "must be a mapping"),
    (_replace("name:", "name: [x]"), 1, "must be a string"),
    ("name: x\ntest: {command: 'true'}\nname: y\n", 3, "duplicate key"),
    ("name: x\ntest: {command: [oops\n", 3, "not valid YAML"),
    ("- just\n- a list\n", 1, "must be a mapping"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), BAD)
def test_bad_specs_name_line_and_problem(text: str, line: int, fragment: str) -> None:
    problems = spec_problems(text)
    assert problems, text
    assert any(p.line == line and fragment in p.message for p in problems), problems


def test_test_is_required() -> None:
    problems = spec_problems("name: x\n")
    assert [(p.line, p.message) for p in problems] == [(1, "runtime.yml: 'test' is required")]


def test_every_problem_at_once_in_file_order() -> None:
    text = textwrap.dedent("""\
        name: ../x
        build: {script: /abs, timeout: never}
        environment: {PATH: "${TOKEN}"}
        mounts: [{source: a, target: /proc}]
        bogus: 1
        test: {command: sh}
        """)
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    lines = [p.line for p in info.value.problems]
    assert lines == sorted(lines)
    assert {1, 2, 3, 4, 5} <= set(lines)
    assert len([p for p in info.value.problems if p.line == 2]) == 2
    assert "line 5, column 1: runtime.yml: unknown key 'bogus'" in str(info.value)


def test_columns_point_at_the_value() -> None:
    (problem,) = spec_problems("name: x\ntest: {command: sh}\nmounts: [{source: a, target: /}]\n")
    assert (problem.line, problem.column) == (3, 30)


def test_empty_and_oversized_text() -> None:
    assert spec_problems("")[0].message == "runtime.yml is empty"
    big = "name: x\ntest: {command: sh}\ndescription: " + "x" * MAX_SPEC_BYTES + "\n"
    assert "over" in spec_problems(big)[0].message


def test_python_objects_are_not_constructed() -> None:
    problems = spec_problems("name: !!python/object/apply:os.system [id]\ntest: {command: sh}\n")
    assert problems


def test_alias_bombs_stay_bounded() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 8):
        text += f"a{i}: &a{i} [" + ", ".join(["*a" + (str(i - 1) if i > 1 else "")] * 10) + "]\n"
    text += "name: x\ntest: {command: sh}\npackages: *a7\n"
    problems = spec_problems(text)
    assert any("unknown key" in p.message for p in problems)
    assert len(problems) < 50
