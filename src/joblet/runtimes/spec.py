"""runtime.yml: parse and validate a runtime's spec, reporting every problem at once.

The text is composed (safe loader: no tags, no objects) into nodes that keep
their line and column, and each key is checked against the schema below, so a
user sees every mistake in one answer, each pointing at its place:

    name: python-3.11
    language: python
    version: "3.11"
    description: ...
    requirements: {architectures: [amd64, arm64], gpu: false}
    packages: [numpy]
    build: {script: build.sh, timeout: 20m, max_memory: 2048, network: none}
    environment: {PATH: "/opt/runtime/venv/bin:${PATH}"}
    mounts: [{source: venv/share/man, target: /usr/local/share/man}]
    test: {command: python3, args: ["-c", "print(1)"], timeout: 60s}
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from joblet.errors import InvalidArgument
from joblet.jobs.environment import BASE_ENVIRONMENT
from joblet.runtimes.reference import check_name, normalize_arch
from joblet.runtimes.yaml_nodes import AnyKey, Node, NodeChecker, Problem

MAX_SPEC_BYTES = 64 * 1024
RUNTIME_PATH = "/opt/runtime"
# A runtime's extra mounts may not cover these: the job's own root, its kernel
# views, its workspace and scratch space, and volumes.
FORBIDDEN_TARGETS = ("/proc", "/sys", "/dev", "/work", "/tmp", "/volumes", RUNTIME_PATH)
# What `${VAR}` may name: the base a runtime's values are expanded from
# (joblet.jobs.environment.job_environment); JOB_ID is set after them.
BASE_KEYS = frozenset(BASE_ENVIRONMENT) | {"JOB_NAME"}
_REFERENCE = re.compile(r"\$\{([^}]*)\}")

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LANGUAGE = re.compile(r"[a-z][a-z0-9_]*")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_NETWORK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class SpecError(InvalidArgument):
    """A runtime.yml with problems; `problems` holds each, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.column))
        lines = [f"runtime.yml has {len(self.problems)} problem(s):"]
        super().__init__("\n".join(lines + [str(p) for p in self.problems]))


@dataclass(frozen=True)
class BuildSpec:
    script: str = "build.sh"  # relative to the sources
    timeout_s: float = 0.0  # 0: the config's default
    max_memory_mb: int = 0  # 0: the config's default
    network: str = "none"


@dataclass(frozen=True)
class SelfTest:
    command: str
    args: tuple[str, ...] = ()
    timeout_s: float = 0.0  # 0: the daemon's default


@dataclass(frozen=True)
class MountSpec:
    source: str  # relative to the runtime's tree
    target: str  # absolute path in the job


@dataclass(frozen=True)
class RuntimeSpec:
    name: str
    test: SelfTest
    build: BuildSpec = field(default_factory=BuildSpec)
    language: str = ""
    version: str = ""
    description: str = ""
    architectures: tuple[str, ...] = ()  # empty: any
    gpu: bool = False
    packages: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    mounts: tuple[MountSpec, ...] = ()


def parse_spec(text: str) -> RuntimeSpec:
    """The spec `text` describes; SpecError listing every problem otherwise."""
    checker = _Checker()
    spec = checker.document(text)
    if checker.problems or spec is None:
        raise SpecError(checker.problems or [Problem(1, 1, "runtime.yml is empty")])
    return spec


def spec_problems(text: str) -> list[Problem]:
    try:
        parse_spec(text)
    except SpecError as exc:
        return exc.problems
    return []


def mount_target_problem(target: str) -> str | None:
    """Why `target` may not be an extra mount's target, or None."""
    if not target.startswith("/"):
        return f"mount target {target!r} must be an absolute path"
    if "\0" in target or _CONTROL.search(target):
        return "mount target contains a control character"
    if ".." in target.split("/"):
        return f"mount target {target!r} must not contain '..'"
    normal = posixpath.normpath(target)
    if normal == "/":
        return "mount target must not be /"
    for forbidden in FORBIDDEN_TARGETS:
        if normal == forbidden or normal.startswith(forbidden + "/"):
            return f"mount target {target!r} is under {forbidden}, which a runtime cannot cover"
    return None


def relative_path_problem(what: str, path: str) -> str | None:
    """Why `path` is not a relative path confined to its directory, or None."""
    if not path:
        return f"{what} is empty"
    if "\0" in path or _CONTROL.search(path):
        return f"{what} contains a control character"
    if path.startswith("/"):
        return f"{what} {path!r} must be relative to the runtime"
    if ".." in path.split("/"):
        return f"{what} {path!r} must not contain '..'"
    if posixpath.normpath(path) == ".":
        return f"{what} {path!r} names the runtime itself"
    return None


class _Checker(NodeChecker):
    """runtime.yml's schema over the generic node checks."""

    def document(self, text: str) -> RuntimeSpec | None:
        root = self.compose(text, MAX_SPEC_BYTES)
        if root is None:
            return None
        fields = self.mapping(root, "runtime.yml", _TOP_KEYS, required=("name", "test"))
        return self.spec(fields) if fields is not None else None

    def spec(self, fields: dict[str, Node]) -> RuntimeSpec | None:
        name = self.string(fields["name"], "name") if "name" in fields else None
        if name is not None:
            try:
                check_name(name)
            except InvalidArgument as exc:
                self.fail(fields["name"], str(exc))
        get = fields.get
        test = self.test(fields["test"]) if "test" in fields else None
        build = self.build(fields["build"]) if "build" in fields else BuildSpec()
        architectures, gpu = self.requirements(get("requirements"))
        result = RuntimeSpec(
            name=name or "",
            test=test or SelfTest(""),
            build=build,
            language=self.matching(fields["language"], "language", _LANGUAGE)
            if "language" in fields
            else "",
            version=self.matching(fields["version"], "version", _VERSION)
            if "version" in fields
            else "",
            description=self.description(get("description")),
            architectures=architectures,
            gpu=gpu,
            packages=tuple(self.strings(fields["packages"], "packages", _package_problem))
            if "packages" in fields
            else (),
            environment=self.environment(get("environment")),
            mounts=self.mounts(get("mounts")),
        )
        return result if name is not None and test is not None else None

    def description(self, node: Node | None) -> str:
        if node is None:
            return ""
        value = self.string(node, "description") or ""
        if len(value) > 1024:
            self.fail(node, "description is longer than 1024 characters")
        return value

    def requirements(self, node: Node | None) -> tuple[tuple[str, ...], bool]:
        if node is None:
            return (), False
        fields = self.mapping(node, "requirements", frozenset({"architectures", "gpu"})) or {}
        arches: list[str] = []
        if "architectures" in fields:
            for raw in self.strings(fields["architectures"], "architectures", _arch_problem):
                arches.append(normalize_arch(raw))
        gpu = self.boolean(fields["gpu"], "requirements.gpu") if "gpu" in fields else False
        return tuple(dict.fromkeys(arches)), gpu

    def build(self, node: Node) -> BuildSpec:
        keys = frozenset({"script", "timeout", "max_memory", "network"})
        fields = self.mapping(node, "build", keys) or {}
        script = "build.sh"
        if "script" in fields:
            script = self.string(fields["script"], "build.script") or script
            problem = relative_path_problem("build.script", script)
            if problem:
                self.fail(fields["script"], problem)
        return BuildSpec(
            script=posixpath.normpath(script),
            timeout_s=self.duration(fields["timeout"], "build.timeout")
            if "timeout" in fields
            else 0.0,
            max_memory_mb=self.integer(fields["max_memory"], "build.max_memory")
            if "max_memory" in fields
            else 0,
            network=self.matching(fields["network"], "build.network", _NETWORK)
            if "network" in fields
            else "none",
        )

    def test(self, node: Node) -> SelfTest | None:
        keys = frozenset({"command", "args", "timeout"})
        fields = self.mapping(node, "test", keys, required=("command",))
        if fields is None or "command" not in fields:
            return None
        command = self.string(fields["command"], "test.command")
        if command is not None and (not command.strip() or "\0" in command):
            self.fail(fields["command"], "test.command is empty or holds a NUL byte")
        args = self.strings(fields["args"], "test.args", _arg_problem) if "args" in fields else []
        timeout = self.duration(fields["timeout"], "test.timeout") if "timeout" in fields else 0.0
        return SelfTest(command or "", tuple(args), timeout)

    def environment(self, node: Node | None) -> tuple[tuple[str, str], ...]:
        if node is None:
            return ()
        fields = self.mapping(node, "environment", AnyKey()) or {}
        env = []
        for key, value_node in fields.items():
            if _ENV_KEY.fullmatch(key) is None:
                self.fail(value_node, f"environment key {key!r} is not a valid variable name")
                continue
            value = self.string(value_node, f"environment.{key}")
            if value is None:
                continue
            if "\0" in value:
                self.fail(value_node, f"environment.{key} contains a NUL byte")
            unknown = [ref for ref in _REFERENCE.findall(value) if ref not in BASE_KEYS]
            if unknown:
                allowed = ", ".join(sorted(BASE_KEYS))
                self.fail(
                    value_node,
                    f"environment.{key} refers to ${{{unknown[0]}}}: only the job's base"
                    f" environment may be referred to ({allowed})",
                )
            env.append((key, value))
        return tuple(env)

    def mounts(self, node: Node | None) -> tuple[MountSpec, ...]:
        if node is None:
            return ()
        mounts = []
        for item in self.items(node, "mounts"):
            keys = frozenset({"source", "target"})
            fields = self.mapping(item, "a mount", keys, required=("source", "target"))
            if not fields or "source" not in fields or "target" not in fields:
                continue
            source = self.string(fields["source"], "mount source")
            target = self.string(fields["target"], "mount target")
            if source is not None:
                problem = relative_path_problem("mount source", source)
                if problem:
                    self.fail(fields["source"], problem)
                    source = None
            if target is not None:
                problem = mount_target_problem(target)
                if problem:
                    self.fail(fields["target"], problem)
                    target = None
            if source is not None and target is not None:
                mounts.append(MountSpec(posixpath.normpath(source), posixpath.normpath(target)))
        return tuple(mounts)


_TOP_KEYS = frozenset(
    {
        "name",
        "language",
        "version",
        "description",
        "requirements",
        "packages",
        "build",
        "environment",
        "mounts",
        "test",
    }
)


def _arch_problem(value: str) -> str | None:
    return None if normalize_arch(value) else f"unknown architecture {value[:40]!r}"


def _package_problem(value: str) -> str | None:
    if not value or len(value) > 200 or _CONTROL.search(value):
        return f"package {value[:40]!r} is empty, too long or holds a control character"
    return None


def _arg_problem(value: str) -> str | None:
    return "test.args: an argument holds a NUL byte" if "\0" in value else None
