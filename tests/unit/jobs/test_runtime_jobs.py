"""A build's job spec, and keeping the daemon's own files out of builds (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from joblet.config.model import (
    DEFAULT_ALLOWED_MOUNTS,
    DaemonConfig,
    FilesystemConfig,
    RootLayout,
    SecurityConfig,
)
from joblet.errors import FailedPrecondition, InvalidArgument, NotFound
from joblet.jobs.model import JobSpec
from joblet.jobs.runtime_jobs import (
    acquire,
    build_spec,
    check_build_isolation,
    is_build,
    private_exposure,
)
from joblet.runtimes.seams import BuildPlan

PLAN = BuildPlan(runtime_name="python-3.11", source_dir="/s", staging_dir="/t",
                 script="build.sh", timeout_s=60, max_memory_mb=512, max_cpu=100)  # fmt: skip


def test_build_job_spec() -> None:
    spec = build_spec(PLAN)
    assert (spec.command, spec.args) == ("/bin/sh", ("/src/build.sh",))
    assert spec.name == "runtime-build:python-3.11" and is_build(spec)
    assert (spec.max_memory_mb, spec.max_cpu, spec.network) == (512, 100, "none")
    assert spec.run_as == (0, 0)
    assert build_spec(replace_plan(script="sub/dir/b.sh")).args == ("/src/sub/dir/b.sh",)


def replace_plan(**changes: object) -> BuildPlan:
    from dataclasses import replace

    return replace(PLAN, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("script", ["../x.sh", "/etc/x.sh", "", "a/../../b", "a\0b"])
def test_build_scripts_stay_in_src(script: str) -> None:
    with pytest.raises(InvalidArgument):
        build_spec(replace_plan(script=script))


def test_build_never_on_the_host_network() -> None:
    with pytest.raises(InvalidArgument, match="host"):
        build_spec(replace_plan(network="host"))


def test_build_needs_a_timeout_and_scratch() -> None:
    with pytest.raises(InvalidArgument, match="timeout"):
        build_spec(replace_plan(timeout_s=0))
    with pytest.raises(InvalidArgument, match="scratch"):
        build_spec(replace_plan(scratch_bytes=0))


def test_user_jobs_are_no_builds() -> None:
    assert not is_build(JobSpec(command="x", name="runtime-build"))


def test_private_exposure() -> None:
    private = ["/opt/joblet", "/opt/joblet/config", "/run/joblet"]
    assert private_exposure(["/usr", "/bin", "/optx"], private) == []
    assert private_exposure(["/usr", "/opt"], private) == ["/opt"]
    assert private_exposure(["/opt/joblet/jobs"], private) == ["/opt/joblet/jobs"]
    assert private_exposure(["/run/"], private) == ["/run/"]


def test_no_resolver_means_not_found() -> None:
    assert acquire(None, JobSpec(command="x"), "j") is None
    with pytest.raises(NotFound, match="not installed"):
        acquire(None, JobSpec(command="x", runtime="python-3.11"), "j")


def _config(root: str, allowed: tuple[str, ...]) -> DaemonConfig:
    return DaemonConfig(
        layout=RootLayout(Path(root)),
        security=SecurityConfig("", "", ""),
        filesystem=FilesystemConfig(allowed_mounts=allowed),
    )


def test_builds_refused_where_allowed_mounts_show_the_daemons_files() -> None:
    check_build_isolation(_config("/opt/joblet", DEFAULT_ALLOWED_MOUNTS))
    for allowed in (("/usr", "/opt"), ("/srv/joblet/config",), ("/run",)):
        root = "/srv/joblet" if allowed[0].startswith("/srv") else "/opt/joblet"
        with pytest.raises(FailedPrecondition, match="daemon's root or keys"):
            check_build_isolation(_config(root, allowed))
