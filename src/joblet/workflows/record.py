"""A workflow as the state service keeps it: what was submitted (the YAML as
written, the files' metadata), which job record each job got, and which
starts were decided, so a restarted daemon never starts a job twice.

Pure data and its JSON form; the shell writes it before acting on it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from joblet.errors import JobletError

SCHEMA_VERSION = 1


class RecordError(JobletError):
    """A stored workflow record cannot be read."""


@dataclass(frozen=True)
class FileMeta:
    path: str
    size: int
    mode: int
    is_directory: bool


@dataclass(frozen=True)
class WorkflowRecord:
    id: str
    name: str
    yaml: str  # the original text; masked only when served
    jobs: dict[str, str]  # job name -> job uuid, in YAML order
    created_at: float
    files: tuple[FileMeta, ...] = ()
    started_at: float = 0.0  # the first job's start
    ended_at: float = 0.0  # every job final
    stopped_by_user: bool = False
    # Job names whose start was decided and recorded before their launch.
    started: frozenset[str] = frozenset()
    # A job given to RunJob with requirements: a one-job workflow nobody lists;
    # its requirements are job ids, kept as the expression text.
    standalone: bool = False
    requirements: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)  # room for later keys

    @property
    def finished(self) -> bool:
        return self.ended_at > 0

    def with_started(self, names: set[str] | frozenset[str]) -> WorkflowRecord:
        return replace(self, started=self.started | names)


def record_to_json(record: WorkflowRecord) -> bytes:
    data: dict[str, Any] = {
        "_v": SCHEMA_VERSION,
        "id": record.id,
        "name": record.name,
        "yaml": record.yaml,
        "jobs": [[name, job_id] for name, job_id in record.jobs.items()],
        "created_at": record.created_at,
        "files": [[f.path, f.size, f.mode, f.is_directory] for f in record.files],
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "stopped_by_user": record.stopped_by_user,
        "started": sorted(record.started),
        "standalone": record.standalone,
        "requirements": list(record.requirements),
        "extra": record.extra,
    }
    return json.dumps(data, separators=(",", ":")).encode()


def record_from_json(blob: bytes) -> WorkflowRecord:
    try:
        data = json.loads(blob)
        return WorkflowRecord(
            id=str(data["id"]),
            name=str(data["name"]),
            yaml=str(data["yaml"]),
            jobs={str(name): str(job_id) for name, job_id in data["jobs"]},
            created_at=float(data["created_at"]),
            files=tuple(
                FileMeta(str(p), int(s), int(m), bool(d)) for p, s, m, d in data.get("files", [])
            ),
            started_at=float(data.get("started_at", 0.0)),
            ended_at=float(data.get("ended_at", 0.0)),
            stopped_by_user=bool(data.get("stopped_by_user", False)),
            started=frozenset(str(n) for n in data.get("started", [])),
            standalone=bool(data.get("standalone", False)),
            requirements=tuple(str(r) for r in data.get("requirements", [])),
            extra={str(k): str(v) for k, v in data.get("extra", {}).items()},
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"unreadable workflow record: {exc}") from exc


# A decided start is a small record of its own ("<workflow id>/start/<job name>"),
# written once before the launch: the workflow's record (with its YAML) is not
# rewritten for every job that starts.
START_MARK = "/start/"


def start_key(workflow_id: str, job_name: str) -> str:
    return f"{workflow_id}{START_MARK}{job_name}"


def group_loaded(entries: list[tuple[str, bytes]]) -> tuple[list[WorkflowRecord], list[str]]:
    """Workflow records (with their start marks folded in) from what the store
    listed; and one line for each record that could not be read."""
    marks: dict[str, set[str]] = {}
    records: list[WorkflowRecord] = []
    problems: list[str] = []
    for key, blob in entries:
        workflow_id, mark, name = key.partition(START_MARK)
        if mark:
            marks.setdefault(workflow_id, set()).add(name)
            continue
        try:
            records.append(record_from_json(blob))
        except RecordError as exc:
            problems.append(f"workflow {key}: {exc}")
    return [r.with_started(marks.get(r.id, set())) for r in records], problems
