import random
import uuid

import pytest

from joblet.errors import InvalidArgument
from joblet.persist.archive import keys
from joblet.persist.archive.backoff import Backoff
from joblet.persist.archive.manifest import ArchivedSegment, Manifest
from joblet.persist.config import RetentionConfig
from joblet.persist.retention import over_size, plan_deletions
from joblet.persist.store import JobUsage
from joblet.persist.store.segment import SegmentInfo


def test_key_layout() -> None:
    job = str(uuid.uuid4())
    assert keys.segment_key("prod", "n1", job, "logs", "seg-00000001.zst") == (
        f"prod/n1/{job}/logs/seg-00000001.zst"
    )
    assert keys.manifest_key("", "n1", job) == f"n1/{job}/manifest.json"
    assert keys.job_of_manifest(f"prod/n1/{job}/manifest.json") == job
    assert keys.job_of_manifest(f"prod/n1/{job}/logs/seg-00000001.zst") is None
    with pytest.raises(InvalidArgument):
        keys.job_prefix("prod", "n1", "../other")
    with pytest.raises(ValueError, match="kind"):
        keys.segment_key("prod", "n1", job, "secrets", "x")


def test_manifest_round_trip_and_refusal() -> None:
    info = SegmentInfo("seg-00000001.zst", 1, 2, 3, 40, 20, "s", 7)
    manifest = Manifest("j", "n", 10.0, 9.0, {"logs": [ArchivedSegment(info, "ab" * 32)]})
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest
    for bad in (b"{}", b"[1]", b"not json", b'{"version": 2}'):
        with pytest.raises(ValueError):
            Manifest.from_bytes(bad)


def test_backoff_grows_with_jitter_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(max_s=8.0, rng=random.Random(1))
    waits = [backoff.next_wait() for _ in range(12)]
    assert all(0 <= w <= 8.0 for w in waits)
    assert backoff.ceiling() == 8.0
    assert len({round(w, 6) for w in waits}) == len(waits)  # jittered, not in step
    assert max(waits[-6:]) > 2.0  # grown past the first ceilings
    backoff.reset()
    assert backoff.ceiling() == 0.5 and backoff.next_wait() <= 1.0


def test_retention_keeps_what_the_archive_does_not_hold_yet() -> None:
    policy = RetentionConfig(max_age_s=0, max_total_bytes=100)
    usages = [JobUsage("old", 1.0, 80), JobUsage("mid", 2.0, 80), JobUsage("new", 3.0, 80)]
    assert plan_deletions(usages, policy, now=10.0) == ["old", "mid"]
    # Only archived jobs may go; the oldest archived first.
    doomed = plan_deletions(usages, policy, now=10.0, deletable={"mid", "new"})
    assert doomed == ["mid", "new"]
    doomed = plan_deletions(usages, policy, now=10.0, deletable={"new"})
    assert doomed == ["new"] and over_size(usages, doomed, policy) == 60
    assert over_size(usages, ["old", "mid"], policy) <= 0


def test_min_free_lowers_the_size_limit_by_what_is_missing() -> None:
    from joblet.persist.retention import under_pressure

    policy = RetentionConfig(max_age_s=0, max_total_bytes=1000, min_free_bytes=300)
    assert under_pressure(policy, total=800, free=500) == policy  # enough free
    assert under_pressure(policy, total=800, free=100).max_total_bytes == 600
    assert under_pressure(policy, total=100, free=0).max_total_bytes == 1  # all that can go
    off = RetentionConfig(max_age_s=0, max_total_bytes=0, min_free_bytes=0)
    assert under_pressure(off, total=800, free=0) == off
