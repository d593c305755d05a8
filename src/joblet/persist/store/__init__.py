"""On-disk history: compressed segment files per job, an index, filtered reads."""

from joblet.persist.store.query import LogFilter, read_logs, read_metrics
from joblet.persist.store.records import Marker, Record
from joblet.persist.store.store import HistoryStore, JobUsage, Snapshot, check_job_id

__all__ = [
    "HistoryStore",
    "JobUsage",
    "LogFilter",
    "Marker",
    "Record",
    "Snapshot",
    "check_job_id",
    "read_logs",
    "read_metrics",
]
