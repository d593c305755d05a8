"""Workflow records read back at a start, each with its spec parsed again."""

from __future__ import annotations

import logging

from joblet.workflows.model import Known, WorkflowSpec
from joblet.workflows.record import WorkflowRecord, group_loaded
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
        out.append((record, spec))
    log.info("loaded %d workflow(s) from state", len(out))
    return out, standalone
