"""The workflow validator: what it accepts and builds, and each class of
problem with its message and line, all reported at once."""

from __future__ import annotations

import textwrap

import pytest

from joblet.workflows import yamlnodes
from joblet.workflows.executor import Plan
from joblet.workflows.expressions import render
from joblet.workflows.model import Known, VolumeDecl
from joblet.workflows.yamlspec import MAX_JOBS, WorkflowInvalid, parse_workflow

ETL = textwrap.dedent(
    """\
    name: nightly-etl
    environment: {STAGE: prod}                     # defaults; a job's own values win
    secret_environment: {DB_PASSWORD: hunter2}
    volumes: {etl: {size: 1GB, type: filesystem}}  # created before the first job if missing
    jobs:
      extract:
        command: python3
        args: [extract.py]
        runtime: python-3.11
        uploads: {files: [extract.py]}             # relative to the YAML file
        volumes: [etl]
        resources: {max_cpu: 100, max_memory: 512, cpu_cores: "0"}
      t-a: {command: echo, args: [a], requires: [{extract: COMPLETED}]}
      t-b: {command: echo, args: [b], requires: [{extract: COMPLETED}]}
      load: {command: echo, args: [load], requires: ["t-a=COMPLETED AND t-b=COMPLETED"]}
      notify: {command: echo, args: [alert], requires: ["NOT load=COMPLETED"]}
      cleanup: {command: echo, args: [bye], requires: [{load: FINISHED}]}
    """
)


def problems(text: str, known: Known | None = None) -> list[str]:
    with pytest.raises(WorkflowInvalid) as caught:
        parse_workflow(textwrap.dedent(text), known=known)
    return [str(p) for p in caught.value.problems]


def one_problem(text: str, known: Known | None = None) -> str:
    found = problems(text, known)
    assert len(found) == 1, found
    return found[0]


def test_the_etl_of_the_format_parses_to_its_jobs_in_yaml_order() -> None:
    spec = parse_workflow(ETL, known=Known(files=frozenset({"extract.py"}), host_cpus=2))
    assert spec.name == "nightly-etl"
    assert [j.name for j in spec.jobs] == ["extract", "t-a", "t-b", "load", "notify", "cleanup"]
    assert spec.volumes_to_create == (VolumeDecl("etl", "1GB", "filesystem"),)
    assert spec.volume_names == ("etl",)
    extract = spec.jobs[0]
    assert (extract.command, extract.args, extract.runtime) == (
        "python3",
        ("extract.py",),
        "python-3.11",
    )
    assert (extract.max_cpu, extract.max_memory_mb, extract.cpu_cores) == (100, 512, "0")
    assert extract.uploads == ("extract.py",) and extract.volumes == ("etl",)
    assert extract.environment == {"STAGE": "prod"}
    assert extract.secret_environment == {"DB_PASSWORD": "hunter2"}
    load = spec.job("load")
    assert [render(r) for r in load.requires] == ["t-a=COMPLETED AND t-b=COMPLETED"]
    assert load.dependencies == ("t-a", "t-b")
    assert spec.job("cleanup").dependencies == ("load",)
    assert Plan.of(spec).topological[0] == "extract"


def test_reference_style_files_are_accepted() -> None:
    spec = parse_workflow(
        """\
version: "3.0"
jobs:
  extract-data:
    command: "python3"
    args: [ "extract.py" ]
    runtime: "python-3.11-ml"
    volumes: [ "data-pipeline" ]
    resources:
      max_memory: 1024
      max_io_bps: 1000000
      gpu_count: 1
      gpu_memory_mb: 2048
  validate-data:
    command: "python3"
    requires:
      - extract-data: "COMPLETED"
      - expression: "extract-data=COMPLETED OR extract-data=FAILED"
      - extract-data: [COMPLETED, FAILED]
"""
    )
    data = spec.jobs[0]
    assert (data.max_memory_mb, data.max_iobps, data.gpu_count, data.gpu_memory_mb) == (
        1024,
        1000000,
        1,
        2048,
    )
    assert [render(r) for r in spec.jobs[1].requires] == [
        "extract-data=COMPLETED",
        "extract-data=COMPLETED OR extract-data=FAILED",
        "extract-data IN (COMPLETED, FAILED)",
    ]


def test_volumes_as_a_list_name_existing_volumes() -> None:
    text = "volumes: [data, cache]\njobs:\n  a: {command: x, volumes: [data, 'cache:ro']}\n"
    spec = parse_workflow(text, known=Known(volumes=frozenset({"data", "cache"})))
    assert spec.volume_names == ("data", "cache") and spec.volumes_to_create == ()
    assert spec.jobs[0].volumes == ("data", "cache:ro")


def test_volumes_as_a_list_must_exist_and_only_declared_or_existing_ones_are_usable() -> None:
    text = "volumes: [data, dta]\njobs:\n  a: {command: x, volumes: [dta, other]}\n"
    found = problems(text, Known(volumes=frozenset({"data"})))
    assert found == [
        'line 1: volumes[1]: volume "dta" does not exist (declare it as NAME: {size: ...} to'
        ' create it) (did you mean "data"?)',
        'line 3: jobs.a.volumes[0]: volume "dta" neither exists nor is declared under volumes'
        ' (did you mean "data"?)',
        'line 3: jobs.a.volumes[1]: volume "other" neither exists nor is declared under volumes',
    ]


@pytest.mark.parametrize(
    ("written", "mb"),
    [("512", 512), ('"2G"', 2048), ('"1GiB"', 1024), ('"512M"', 512), ('"1T"', 1 << 20)],
)
def test_max_memory_takes_mb_or_a_unit(written: str, mb: int) -> None:
    spec = parse_workflow(
        f"jobs:\n  a:\n    command: x\n    resources: {{max_memory: {written}}}\n"
    )
    assert spec.jobs[0].max_memory_mb == mb


def test_environment_defaults_merge_job_wins_and_secret_names_stay_secret() -> None:
    spec = parse_workflow(
        """\
environment: {STAGE: prod, HOST: db, GIT_TOKEN: t0k}
secret_environment: {DB_PASSWORD: hunter2}
jobs:
  a:
    command: x
    environment: {STAGE: dev, URL: "pg://${HOST}/x", DSN: "u:${DB_PASSWORD}@${HOST}", PORT: 5432}
"""
    )
    job = spec.jobs[0]
    assert job.environment == {"STAGE": "dev", "HOST": "db", "URL": "pg://db/x", "PORT": "5432"}
    # A secret-looking name, and a value built from a secret, stay out of sight.
    assert job.secret_environment == {
        "GIT_TOKEN": "t0k",
        "DB_PASSWORD": "hunter2",
        "DSN": "u:hunter2@db",
    }


def test_shell_syntax_in_args_is_left_alone() -> None:
    spec = parse_workflow("jobs:\n  a: {command: bash, args: [-c, 'echo ${#X} $Y ${Z:-1}']}\n")
    assert spec.jobs[0].args == ("-c", "echo ${#X} $Y ${Z:-1}")


# Each class of problem: (YAML, expected line text).
CASES = {
    "not yaml": ("jobs: [a\n", "line 2: not valid YAML"),
    "empty": ("", "line 1: workflow is empty"),
    "root not a mapping": ("- a\n", "line 1: must be a mapping, got a list"),
    "no jobs key": ("name: x\n", "line 1: jobs: required"),
    "no jobs": ("jobs: {}\n", "line 1: jobs: no jobs: give at least one"),
    "unknown top key": (
        "jobz: {}\njobs:\n  a: {command: x}\n",
        'line 1: jobz: unknown key (did you mean "jobs"?)',
    ),
    "unknown job key": (
        "jobs:\n  a:\n    command: x\n    requiress: []\n",
        'line 4: jobs.a.requiress: unknown key (did you mean "requires"?)',
    ),
    "unknown resource key": (
        "jobs:\n  a:\n    command: x\n    resources: {max_mem: 1}\n",
        'line 4: jobs.a.resources.max_mem: unknown key (did you mean "max_memory"?)',
    ),
    "duplicate key": (
        "jobs:\n  a:\n    command: x\n    command: y\n",
        "line 4: jobs.a.command: duplicate key (first given on line 3)",
    ),
    "duplicate job": (
        "jobs:\n  a: {command: x}\n  a: {command: y}\n",
        "line 3: jobs.a: duplicate key (first given on line 2)",
    ),
    "missing command": ("jobs:\n  a:\n    args: [x]\n", "line 2: jobs.a.command: required"),
    "wrong type": (
        "jobs:\n  a:\n    command: [x]\n",
        "line 3: jobs.a.command: must be text, got a list",
    ),
    "args not a list": (
        "jobs:\n  a:\n    command: x\n    args: x\n",
        "line 4: jobs.a.args: must be a list",
    ),
    "bad job name": (
        "jobs:\n  ../a: {command: x}\n",
        "line 2: jobs.../a: job name '../a' is not allowed",
    ),
    "bad env key": (
        "jobs:\n  a:\n    command: x\n    environment: {1X: y}\n",
        "line 4: jobs.a.environment.1X: environment key '1X' is not a valid variable name",
    ),
    "undefined variable": (
        "jobs:\n  a:\n    command: x\n    environment: {A: '${B}', B: b}\n",
        "line 4: jobs.a.environment.A: ${B} names no variable defined before it",
    ),
    "env and secret": (
        "jobs:\n  a:\n    command: x\n    environment: {K: a}\n    secret_environment: {K: b}\n",
        "line 5: jobs.a.secret_environment.K: also given in environment: keep one",
    ),
    "unknown status": (
        "jobs:\n  a: {command: x}\n  b:\n    command: x\n    requires: [{a: DONE}]\n",
        'line 5: jobs.b.requires[0].a: unknown status "DONE"',
    ),
    "bad expression": (
        "jobs:\n  a: {command: x}\n  b:\n    command: x\n    requires: ['a=COMPLETED AND']\n",
        "line 5: jobs.b.requires[0]: expected a job name, NOT or '(', got the end (column 16",
    ),
    "unknown job": (
        "jobs:\n  t-a: {command: x}\n  load:\n    command: x\n    requires: ['t-c=COMPLETED']\n",
        'line 5: jobs.load.requires[0]: unknown job "t-c" (did you mean "t-a"?)',
    ),
    "two jobs in one item": (
        "jobs:\n  a: {command: x}\n  b: {command: x, requires: [{a: FAILED, b: FAILED}]}\n",
        "line 3: jobs.b.requires[0]: give one job per item",
    ),
    "cycle": (
        "jobs:\n  a: {command: x, requires: [c=COMPLETED]}\n"
        "  b: {command: x, requires: [a=COMPLETED]}\n"
        "  c: {command: x, requires: [b=COMPLETED]}\n",
        "line 2: jobs.a.requires: requirements form a cycle: a → c → b → a",
    ),
    "self cycle": (
        "jobs:\n  a:\n    command: x\n    requires: [a=FAILED]\n",
        "line 4: jobs.a.requires: requirements form a cycle: a → a",
    ),
    "bad memory": (
        "jobs:\n  a:\n    command: x\n    resources: {max_memory: lots}\n",
        "line 4: jobs.a.resources.max_memory: 'lots' is not a memory size",
    ),
    "negative limit": (
        "jobs:\n  a:\n    command: x\n    resources: {gpu_count: -1}\n",
        "line 4: jobs.a.resources.gpu_count: -1 must not be negative",
    ),
    "bad cpu list": (
        "jobs:\n  a:\n    command: x\n    resources: {cpu_cores: 3-1}\n",
        "line 4: jobs.a.resources.cpu_cores: cpuCores '3-1' has a range '3-1' that runs backwards",
    ),
    "workdir outside": (
        "jobs:\n  a:\n    command: x\n    workdir: /etc\n",
        "line 4: jobs.a.workdir: workDir '/etc' is outside the job's workspace",
    ),
    "upload outside": (
        "jobs:\n  a:\n    command: x\n    uploads: {files: [../x]}\n",
        "line 4: jobs.a.uploads.files[0]: upload path '../x' leaves the workspace",
    ),
    "volume size missing": (
        "volumes: {v: {type: memory}}\njobs:\n  a: {command: x}\n",
        "line 1: volumes.v: size is required",
    ),
    "volume type": (
        "volumes: {v: {size: 1GB, type: disk}}\njobs:\n  a: {command: x}\n",
        "line 1: volumes.v.type:",
    ),
    "volume twice in a job": (
        "jobs:\n  a: {command: x, volumes: [v, v]}\n",
        "line 2: jobs.a.volumes: volume 'v' is given more than once",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_problem_class_names_line_path_and_fix(case: str) -> None:
    text, expected = CASES[case]
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_known_checks_runtimes_networks_volumes_files_and_cpus() -> None:
    known = Known(
        runtimes=frozenset({"python-3.11"}),
        networks=frozenset({"bridge", "none"}),
        volumes=frozenset({"data"}),
        files=frozenset({"src/main.py", "extract.py"}),
        host_cpus=2,
    )
    found = problems(
        """\
        volumes: {made: {size: 1GB}}
        jobs:
          a:
            command: x
            runtime: python-3.12
            network: brige
            volumes: [data, made, datta]
            uploads: {files: [extract.py, src, missing.py], directories: [src]}
            resources: {max_cpu: 300, cpu_cores: "2"}
        """,
        known,
    )
    assert found == [
        'line 5: jobs.a.runtime: runtime "python-3.12" does not exist on this server'
        ' (did you mean "python-3.11"?)',
        'line 6: jobs.a.network: network "brige" does not exist on this server'
        ' (did you mean "bridge"?)',
        'line 7: jobs.a.volumes[2]: volume "datta" neither exists nor is declared under volumes'
        ' (did you mean "data"?)',
        'line 8: jobs.a.uploads.files[2]: "missing.py"'
        " is not among the files sent with the workflow",
        "line 9: jobs.a.resources.max_cpu: maxCpu 300 is out of range 0..200"
        " (100 = one core, 0 = unlimited; this host has 2 CPUs)",
        "line 9: jobs.a.resources.cpu_cores: cpuCores '2' names CPU 2, but this host has CPUs 0-1",
    ]


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    found = problems(
        """\
        colour: red
        jobs:
          a:
            command: echo
            requires: [{b: COMPLETED}]
          b:
            command: echo
            requires: [a=COMPLETED, c=DONE]
          c:
            requires: [{t-c: COMPLETED}]
        """
    )
    assert [p.split(":")[0] for p in found] == ["line 1", "line 5", "line 8", "line 9", "line 10"]
    assert "cycle" in found[1] and 'unknown status "DONE"' in found[2]
    assert "command: required" in found[3] and 'unknown job "t-c"' in found[4]


def test_problem_carries_path_line_and_column() -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        parse_workflow("jobs:\n  a:\n    command: x\n    requires: ['a=DONE']\n")
    problem = caught.value.problems[0]
    assert (problem.path, problem.line, problem.column) == ("jobs.a.requires[0]", 4, 19)


def billion_laughs(where: str) -> str:
    """Nine levels of ten aliases each: 10^9 nodes once expanded."""
    lines = ["      l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        lines.append(f"      l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]")
    return "jobs:\n  j:\n    command: x\n    environment:\n" + "\n".join(lines) + where


def test_alias_bombs_are_refused_without_expanding_them() -> None:
    found = problems(billion_laughs("\n    args: *l8\n"))
    assert "line 5: jobs.j.environment.l0: must be text, got a list" in found


def test_size_and_job_count_are_capped() -> None:
    assert "over 1,048,576" in one_problem("jobs: {}\n" + "#" * yamlnodes.MAX_TEXT_CHARS)
    many = "jobs:\n" + "".join(f"  j{i}: {{command: x}}\n" for i in range(MAX_JOBS + 1))
    assert f"{MAX_JOBS + 1:,} jobs, over {MAX_JOBS:,}" in one_problem(many)


def test_unsafe_tags_are_refused_not_constructed() -> None:
    found = problems("jobs:\n  a:\n    command: !!python/object/apply:os.system [echo]\n")
    assert found and "line 3" in found[0]


def test_merge_keys_are_not_taken_as_plain_keys() -> None:
    found = problems("jobs:\n  a:\n    <<: {command: x}\n")
    assert any("keys must be plain text" in p for p in found), found


def test_commands_and_args_yaml_reads_as_booleans_or_numbers_are_taken_as_written() -> None:
    spec = parse_workflow("jobs:\n  a: {command: true, args: [1, 2.50, yes]}\n")
    assert (spec.jobs[0].command, spec.jobs[0].args) == ("true", ("1", "2.50", "yes"))


def test_the_message_lists_the_first_hundred_problems_and_counts_the_rest() -> None:
    text = "jobs:\n" + "".join(f"  j{i}: {{args: []}}\n" for i in range(150))
    with pytest.raises(WorkflowInvalid) as caught:
        parse_workflow(text)
    assert len(caught.value.problems) == 150
    lines = str(caught.value).splitlines()
    assert len(lines) == 101 and lines[-1] == "... and 50 more problems"
