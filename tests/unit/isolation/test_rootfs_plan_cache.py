"""The base of the root plan is planned once and moved to each job's root."""

from __future__ import annotations

import dataclasses

from joblet.isolation.rootfs import HostEntry, Kind, RootInputs, plan_root


def _inputs(root: str) -> RootInputs:
    allowed = {
        "/usr": HostEntry(Kind.DIR),
        "/bin": HostEntry(Kind.SYMLINK, "usr/bin"),
        "/etc/passwd": HostEntry(Kind.FILE),
        "/nope": HostEntry(Kind.MISSING),
    }
    return RootInputs(
        root=root,
        allowed=allowed,
        workspace=f"/host{root}/work",
        etc_files={"hostname": b"job\n"},
        tmp_size_bytes=1 << 20,
        volumes=(("/vol/data/mnt", "data", True),),
    )


def _moved(op: object, old: str, new: str) -> object:
    fields = {}
    for field in dataclasses.fields(op):  # type: ignore[arg-type]
        value = getattr(op, field.name)
        if isinstance(value, str) and (value == old or value.startswith(old + "/")):
            value = new + value[len(old) :]
        fields[field.name] = value
    return type(op)(**fields)


def test_plans_for_two_roots_differ_only_by_the_root() -> None:
    first = plan_root(_inputs("/jobs/a/root"))
    second = plan_root(_inputs("/jobs/b/root"))
    assert len(first) == len(second) > 30
    for a, b in zip(first, second, strict=True):
        # The per-job sources (workspace, etc files) differ too; the rest only by root.
        assert (
            _moved(_moved(a, "/jobs/a/root", "/jobs/b/root"), "/host/jobs/a", "/host/jobs/b") == b
        )
    assert not any("joblet-base-root" in repr(op) for op in second)
