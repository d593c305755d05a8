"""One job's mapping to a WorkflowJob: each key read by `jobspec`, the
workflow's defaults merged in, and what `Known` says exists checked. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from yaml.nodes import Node

from joblet.errors import JobletError
from joblet.jobs import request_limits as limits
from joblet.jobs import validation as rules
from joblet.runtimes.reference import normalize as normalize_runtime
from joblet.workflows import jobspec
from joblet.workflows.envvars import Variable, split
from joblet.workflows.model import Known, WorkflowJob
from joblet.workflows.yamlnodes import Reader, join


@dataclass(frozen=True)
class JobContext:
    """What every job of one workflow is read against."""

    reader: Reader
    known: Known
    defaults: dict[str, Variable]  # the workflow's environment, secrets included
    volumes: frozenset[str] | None  # declared or existing; None: don't check
    files: frozenset[str] | None  # uploaded paths and their directories; None: don't check
    priority: int = 0  # the workflow's; a job's own wins


def read_job(
    ctx: JobContext, name: str, key_node: Node, node: Node, path: str
) -> tuple[WorkflowJob, list[jobspec.RequireItem]] | None:
    reader = ctx.reader
    entries = reader.mapping(node, path)
    if entries is None:
        return None
    reader.known_keys(entries, path, jobspec.JOB_KEYS)
    nodes = {key: value for key, _, value in entries}
    values: dict[str, object] = {}
    if "command" not in nodes:
        reader.problem(key_node, join(path, "command"), "required: the program to run")
    for key, value in nodes.items():
        _read_key(ctx, key, value, join(path, key), values)
    requires = (
        jobspec.read_requires(reader, nodes["requires"], join(path, "requires"))
        if "requires" in nodes
        else []
    )
    _environment(ctx, nodes, path, values)
    values.setdefault("priority", ctx.priority)
    jobspec.check_bounds(reader, node, path, values)
    values.setdefault("command", "")  # missing: already a problem; the name still counts
    job = WorkflowJob(
        name=name,
        requires=tuple(item.expr for item in requires),
        dependencies=jobspec.references(requires),
        line=key_node.start_mark.line + 1,
        **values,  # type: ignore[arg-type]
    )
    return job, requires


def _read_key(ctx: JobContext, key: str, node: Node, path: str, values: dict[str, object]) -> None:
    reader = ctx.reader
    if key == "command":
        text = reader.text(node, path, numbers=True)  # `command: true` is the program
        command = (
            None if text is None else jobspec.guard(reader, node, path, rules.check_command, text)
        )
        if command is not None:
            values["command"] = command
    elif key == "args":
        values["args"] = _args(reader, node, path)
    elif key in ("runtime", "network"):
        _named(ctx, key, node, path, values)
    elif key == "volumes":
        values["volumes"] = _volumes(ctx, node, path)
    elif key == "uploads":
        values["uploads"] = jobspec.read_uploads(reader, node, path, ctx.files)
    elif key == "workdir":
        text = reader.text(node, path)
        checked = (
            None if text is None else jobspec.guard(reader, node, path, rules.check_workdir, text)
        )
        if checked is not None:
            values["workdir"] = checked
    elif key == "resources":
        values.update(jobspec.read_resources(reader, node, path, ctx.known))
    elif key == "priority":
        priority = jobspec.read_priority(reader, node, path)
        if priority is not None:
            values["priority"] = priority


def _args(reader: Reader, node: Node, path: str) -> tuple[str, ...]:
    items = reader.sequence(node, path) or []
    args = []
    for index, item in enumerate(items):
        text = reader.text(item, f"{path}[{index}]", numbers=True)
        if text is not None and "\0" not in text:
            args.append(text)
        elif text is not None:
            reader.problem(item, f"{path}[{index}]", "contains a NUL byte")
    return tuple(args)


def _named(ctx: JobContext, key: str, node: Node, path: str, values: dict[str, object]) -> None:
    reader = ctx.reader
    text = reader.text(node, path)
    if text is None:
        return
    name = text
    if key == "runtime":  # NAME or LANG:VERSION[-VARIANT...][@ARCH], as RunJob takes it
        try:
            name = normalize_runtime(text)
        except JobletError as exc:
            reader.problem(node, path, str(exc))
            return
    elif jobspec.guard(reader, node, path, rules.check_name, key, text) is None:
        return
    exists = ctx.known.runtimes if key == "runtime" else ctx.known.networks
    if exists is not None and name not in exists:
        what = "runtime" if key == "runtime" else "network"
        hint = jobspec_hint(text, exists)
        reader.problem(node, path, f'{what} "{text}" does not exist on this server{hint}')
    values[key] = text


def jobspec_hint(word: str, choices: frozenset[str]) -> str:
    from joblet.workflows.yamlnodes import did_you_mean

    return did_you_mean(word, sorted(choices))


def _volumes(ctx: JobContext, node: Node, path: str) -> tuple[str, ...]:
    reader = ctx.reader
    names = reader.texts(node, path)
    if jobspec.guard(reader, node, path, rules.check_volumes, names) is None:
        return ()
    if len(names) > limits.MAX_VOLUMES:
        reader.problem(node, path, f"{len(names)} volumes, over {limits.MAX_VOLUMES}")
    for index, entry in enumerate(names):
        name = entry.removesuffix(":ro")
        if ctx.volumes is not None and name not in ctx.volumes:
            hint = jobspec_hint(name, ctx.volumes)
            where = f"{path}[{index}]"
            reader.problem(
                node, where, f'volume "{name}" neither exists nor is declared under volumes{hint}'
            )
    return names


def _environment(
    ctx: JobContext, nodes: dict[str, Node], path: str, values: dict[str, object]
) -> None:
    reader = ctx.reader
    env_path, secret_path = join(path, "environment"), join(path, "secret_environment")
    env = jobspec.read_env(reader, nodes["environment"], env_path) if "environment" in nodes else []
    secrets = (
        jobspec.read_env(reader, nodes["secret_environment"], secret_path)
        if "secret_environment" in nodes
        else []
    )
    defined = dict(ctx.defaults)
    jobspec.define(reader, defined, env, env_path, False)
    jobspec.define(reader, defined, secrets, secret_path, True)
    visible = {key for key, _, _ in env}
    for key, _, node in secrets:
        if key in visible:
            reader.problem(node, join(secret_path, key), "also given in environment: keep one")
    values["environment"], values["secret_environment"] = split(defined)
