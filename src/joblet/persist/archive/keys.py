"""The object key layout (pure).

    PREFIX/NODE/JOB/logs/seg-00000001.zst     a log segment, as persist wrote it
    PREFIX/NODE/JOB/metrics/seg-00000001.zst  a metric segment
    PREFIX/NODE/JOB/manifest.json             written last: the job is whole

A job's objects are served only through its manifest, so objects without one
(an upload cut short, a deletion half done) are never read.
"""

from __future__ import annotations

from joblet.persist.store import check_job_id

KINDS = ("logs", "metrics")
MANIFEST = "manifest.json"


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def node_prefix(prefix: str, node_id: str) -> str:
    return _join(prefix, node_id) + "/"


def job_prefix(prefix: str, node_id: str, job_id: str) -> str:
    return _join(prefix, node_id, check_job_id(job_id)) + "/"


def segment_key(prefix: str, node_id: str, job_id: str, kind: str, segment: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown history kind {kind!r}")
    return job_prefix(prefix, node_id, job_id) + f"{kind}/{segment}"


def manifest_key(prefix: str, node_id: str, job_id: str) -> str:
    return job_prefix(prefix, node_id, job_id) + MANIFEST


def job_of_manifest(key: str) -> str | None:
    """The job id of a manifest's key, None for any other key."""
    parts = key.split("/")
    if len(parts) < 3 or parts[-1] != MANIFEST:
        return None
    return parts[-2]
