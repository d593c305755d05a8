"""Workflow records read back at a start, each with its spec parsed again."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from joblet.errors import JobletError
from joblet.workflows.model import Known, WorkflowJob, WorkflowSpec
from joblet.workflows.record import WorkflowRecord, group_loaded
from joblet.workflows.shell import ADDED
from joblet.workflows.waits import named_jobs, parse_requirements
from joblet.workflows.yamlspec import WorkflowInvalid, parse_workflow

log = logging.getLogger(__name__)

# What a stored workflow was checked against when it was accepted; at a
# restart only its structure matters (a runtime removed since fails its job
# when it starts, not the workflow).
UNCHECKED = Known(runtimes=None, networks=None, volumes=None, files=None)


def load_workflows(
    entries: list[tuple[str, bytes]],
) -> tuple[list[tuple[WorkflowRecord, WorkflowSpec]], list[WorkflowRecord]]:
    """The workflows with their specs, and the standalone records (jobs given
    to RunJob with requirements)."""
    records, problems = group_loaded(entries)
    for problem in problems:
        log.error("state: %s", problem)
    out: list[tuple[WorkflowRecord, WorkflowSpec]] = []
    standalone = [record for record in records if record.standalone]
    for record in records:
        if record.standalone:
            continue
        try:
            spec = parse_workflow(record.yaml, known=UNCHECKED)
        except WorkflowInvalid as exc:
            log.error(
                "workflow %s no longer parses (%s); its pending jobs are canceled",
                record.id,
                "; ".join(str(p) for p in exc.problems),
            )
            continue
        out.append((record, with_added_jobs(record, spec)))
    log.info("loaded %d workflow(s) from state", len(out))
    return out, standalone


def with_added_jobs(record: WorkflowRecord, spec: WorkflowSpec) -> WorkflowSpec:
    """The spec with the jobs RunJob added to the workflow (kept in the record)."""
    added: list[WorkflowJob] = []
    for key, value in record.extra.items():
        name = key.removeprefix(ADDED)
        if name == key:
            continue
        try:
            requirements = parse_requirements(json.loads(value))
        except (JobletError, ValueError) as exc:
            log.error("workflow %s: added job %s unreadable: %s", record.id, name, exc)
            continue
        names = tuple(named_jobs(requirements))
        added.append(WorkflowJob(name=name, command="", requires=requirements, dependencies=names))
    return replace(spec, jobs=(*spec.jobs, *added)) if added else spec
