"""A workflow's YAML text to a validated WorkflowSpec, or every problem at once.

`parse_workflow` is the one validator: the server runs it on every
RunWorkflow before creating anything, rnx runs it for instant feedback. It
checks keys and types, the job-level rules of RunJob, `${VAR}` references,
requirements (they parse and name jobs of this workflow, with a suggestion
for a typo), cycles (`a → b → c → a`), and, where `Known` says what exists,
runtimes, networks, volumes and uploaded files. Pure: no I/O.
"""

from __future__ import annotations

from yaml.nodes import MappingNode, Node

from joblet.jobs import validation as rules
from joblet.volumes import model as volume_rules
from joblet.workflows import jobspec
from joblet.workflows.envvars import Variable
from joblet.workflows.expressions import jobs_of
from joblet.workflows.graph import find_cycles
from joblet.workflows.jobfields import JobContext, read_job
from joblet.workflows.model import Known, VolumeDecl, WorkflowJob, WorkflowSpec
from joblet.workflows.yamlnodes import (
    MAX_NODES,
    Problem,
    Reader,
    TooLarge,
    WorkflowInvalid,
    compose,
    did_you_mean,
    join,
)

TOP_KEYS = (
    "version",
    "name",
    "environment",
    "secret_environment",
    "volumes",
    "jobs",
    "priority",
)
VOLUME_KEYS = ("size", "type")
MAX_JOBS = 5000

__all__ = ["Known", "Problem", "WorkflowInvalid", "WorkflowSpec", "parse_workflow"]


def parse_workflow(text: str, *, known: Known | None = None) -> WorkflowSpec:
    """The workflow `text` describes, or WorkflowInvalid listing every problem."""
    reader = Reader()
    try:
        spec = _read_workflow(reader, text, known or Known())
    except TooLarge:
        message = f"workflow expands to over {MAX_NODES:,} YAML nodes (aliases?): make it smaller"
        reader.problems.append(Problem("", 1, 1, message))
        spec = None
    if reader.problems or spec is None:
        raise WorkflowInvalid(reader.problems)
    return spec


def _read_workflow(reader: Reader, text: str, known: Known) -> WorkflowSpec | None:
    root = compose(text, reader)
    if root is None:
        return None
    entries = reader.mapping(root, "")
    if entries is None:
        return None
    reader.known_keys(entries, "", TOP_KEYS)
    top = {key: (key_node, value) for key, key_node, value in entries}
    name = ""
    if "name" in top:
        node = top["name"][1]
        name = (
            jobspec.guard(
                reader,
                node,
                "name",
                lambda: rules.check_name("name", reader.text(node, "name") or ""),
            )
            or ""
        )
    if "version" in top:
        reader.text(top["version"][1], "version", numbers=True)
    defaults = _defaults(reader, top)
    decls: tuple[VolumeDecl, ...] = ()
    volume_names: tuple[str, ...] = ()
    if "volumes" in top:
        decls, volume_names = _volumes(reader, top["volumes"][1], known.volumes)
    if "jobs" not in top:
        reader.problem(root, "jobs", "required: the jobs of the workflow")
        return None
    # A job may use a volume this workflow creates or one that exists already.
    declared = {decl.name for decl in decls}
    volume_check = None if known.volumes is None else frozenset(declared | known.volumes)
    priority = 0
    if "priority" in top:
        priority = jobspec.read_priority(reader, top["priority"][1], "priority") or 0
    context = JobContext(
        reader, known, defaults, volume_check, _available(known.files), priority=priority
    )
    jobs = _jobs(context, top["jobs"][1])
    return WorkflowSpec(name, jobs, decls, volume_names)


def _defaults(reader: Reader, top: dict[str, tuple[Node, Node]]) -> dict[str, Variable]:
    defined: dict[str, Variable] = {}
    env = (
        jobspec.read_env(reader, top["environment"][1], "environment")
        if "environment" in top
        else []
    )
    secrets = (
        jobspec.read_env(reader, top["secret_environment"][1], "secret_environment")
        if "secret_environment" in top
        else []
    )
    jobspec.define(reader, defined, env, "environment", False)
    jobspec.define(reader, defined, secrets, "secret_environment", True)
    _disjoint(reader, env, secrets, "")
    return defined


def _disjoint(
    reader: Reader,
    env: list[tuple[str, str, Node]],
    secrets: list[tuple[str, str, Node]],
    path: str,
) -> None:
    visible = {key for key, _, _ in env}
    for key, _, node in secrets:
        if key in visible:
            where = join(join(path, "secret_environment"), key)
            reader.problem(node, where, "also given in environment: keep one")


def _volumes(
    reader: Reader, node: Node, existing: frozenset[str] | None
) -> tuple[tuple[VolumeDecl, ...], tuple[str, ...]]:
    """Either a list of existing volume names or a map of volumes to create."""
    if not isinstance(node, MappingNode):
        names = reader.texts(node, "volumes")
        for index, name in enumerate(names):
            where = f"volumes[{index}]"
            if jobspec.guard(reader, node, where, volume_rules.check_name, name) is None:
                continue
            if existing is not None and name not in existing:
                hint = did_you_mean(name, sorted(existing))
                create = "declare it as NAME: {size: ...} to create it"
                reader.problem(node, where, f'volume "{name}" does not exist ({create}){hint}')
        return (), tuple(dict.fromkeys(names))
    decls = []
    for name, key_node, value in reader.mapping(node, "volumes") or []:
        path = join("volumes", name)
        if jobspec.guard(reader, key_node, path, volume_rules.check_name, name) is None:
            continue
        decl = _volume(reader, name, value, path)
        if decl is not None:
            decls.append(decl)
    return tuple(decls), tuple(d.name for d in decls)


def _volume(reader: Reader, name: str, node: Node, path: str) -> VolumeDecl | None:
    entries = reader.mapping(node, path)
    if entries is None:
        return None
    reader.known_keys(entries, path, VOLUME_KEYS)
    fields = {key: value for key, _, value in entries}
    if "size" not in fields:
        reader.problem(node, path, "size is required (e.g. 500MB, 1GB)")
        return None
    size = reader.text(fields["size"], join(path, "size"), numbers=True)
    kind = "filesystem"
    if "type" in fields:
        kind = reader.text(fields["type"], join(path, "type")) or ""
        jobspec.guard(reader, fields["type"], join(path, "type"), volume_rules.parse_type, kind)
    if size is None:
        return None
    checked = jobspec.guard(
        reader, fields["size"], join(path, "size"), volume_rules.parse_size, size, 1 << 62
    )
    return None if checked is None else VolumeDecl(name, size, kind)


def _available(files: frozenset[str] | None) -> frozenset[str] | None:
    """The uploaded paths and every directory above them."""
    if files is None:
        return None
    found: set[str] = set()
    for path in files:
        parts = path.strip("/").split("/")
        found.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return frozenset(found)


def _jobs(ctx: JobContext, node: Node) -> tuple[WorkflowJob, ...]:
    reader = ctx.reader
    entries = reader.mapping(node, "jobs")
    if entries is None:
        return ()
    if not entries:
        reader.problem(node, "jobs", "no jobs: give at least one")
    if len(entries) > MAX_JOBS:
        reader.problem(node, "jobs", f"{len(entries):,} jobs, over {MAX_JOBS:,}")
        return ()
    parsed = []
    for name, key_node, value in entries:
        path = join("jobs", name)
        jobspec.guard(reader, key_node, path, rules.check_name, "job name", name)
        found = read_job(ctx, name, key_node, value, path)
        if found is not None:
            parsed.append(found)
    _check_references(reader, parsed)
    return tuple(job for job, _ in parsed)


def _check_references(
    reader: Reader, parsed: list[tuple[WorkflowJob, list[jobspec.RequireItem]]]
) -> None:
    names = [job.name for job, _ in parsed]
    known = set(names)
    for _, items in parsed:
        for item in items:
            for leaf in _atoms(item):
                if leaf not in known:
                    reader.problem(
                        item.node, item.path, f'unknown job "{leaf}"{did_you_mean(leaf, names)}'
                    )
    needs = {job.name: [d for d in job.dependencies if d in known] for job, _ in parsed}
    where = {job.name: items for job, items in parsed}
    for cycle in find_cycles(names, needs):
        first = where[cycle[0]][0]
        message = "requirements form a cycle: " + " → ".join(cycle) + " (each needs the next)"
        reader.problem(first.node, join(join("jobs", cycle[0]), "requires"), message)


def _atoms(item: jobspec.RequireItem) -> list[str]:
    return [leaf.job for leaf in jobs_of(item.expr)]
