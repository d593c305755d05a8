"""Retention: which job histories to delete, oldest last write first.

A job's logs and metrics are one history: they are aged and deleted together.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace

from joblet.persist.config import RetentionConfig
from joblet.persist.store.store import JobUsage


def merge_usage(*kinds: Iterable[JobUsage]) -> list[JobUsage]:
    """One entry per job across logs and metrics: sizes summed, newest write kept."""
    merged: dict[str, JobUsage] = {}
    for usages in kinds:
        for usage in usages:
            seen = merged.get(usage.job_id)
            merged[usage.job_id] = (
                usage
                if seen is None
                else JobUsage(
                    usage.job_id,
                    max(seen.last_write, usage.last_write),
                    seen.stored_bytes + usage.stored_bytes,
                )
            )
    return list(merged.values())


def plan_deletions(
    usages: Iterable[JobUsage],
    policy: RetentionConfig,
    now: float,
    deletable: Collection[str] | None = None,
) -> list[str]:
    """Jobs older than max_age, then the oldest others until the total fits.
    `deletable`: only these may go (an archive's jobs); None: any."""
    ordered = sorted(usages, key=lambda u: (u.last_write, u.job_id))
    doomed: list[str] = []
    total = sum(u.stored_bytes for u in ordered)
    for usage in ordered:
        too_old = bool(policy.max_age_s) and now - usage.last_write > policy.max_age_s
        too_big = bool(policy.max_total_bytes) and total > policy.max_total_bytes
        if not (too_old or too_big):
            break  # sorted by age: nothing newer is too old, and the total fits
        if deletable is not None and usage.job_id not in deletable:
            continue  # not safe elsewhere yet: kept
        doomed.append(usage.job_id)
        total -= usage.stored_bytes
    return doomed


def over_size(usages: Iterable[JobUsage], doomed: Collection[str], policy: RetentionConfig) -> int:
    """Bytes over max_total once `doomed` are gone (0 or less: it fits)."""
    if not policy.max_total_bytes:
        return 0
    left = sum(u.stored_bytes for u in usages if u.job_id not in doomed)
    return left - policy.max_total_bytes


def under_pressure(policy: RetentionConfig, total: int, free: int) -> RetentionConfig:
    """The policy to apply when the disk has `free` bytes left: with less
    than min_free, the size limit drops so that deleting down to it frees
    what is missing (never below 0)."""
    missing = policy.min_free_bytes - free
    if not policy.min_free_bytes or missing <= 0:
        return policy
    limit = max(0, total - missing)
    if policy.max_total_bytes:
        limit = min(limit, policy.max_total_bytes)
    return replace(policy, max_total_bytes=limit or 1)
