import os
from pathlib import Path

from joblet.persist.config import PersistConfig, RetentionConfig
from joblet.persist.retention import merge_usage, plan_deletions
from joblet.persist.service import PersistService
from joblet.persist.store import JobUsage, Marker, Record

DAY = 86400.0


def test_plan_by_age_then_size() -> None:
    usages = [JobUsage("a", 100.0, 10), JobUsage("b", 200.0, 10), JobUsage("c", 300.0, 10)]
    assert plan_deletions(usages, RetentionConfig(max_age_s=150, max_total_bytes=0), 360) == [
        "a",
        "b",
    ]
    assert plan_deletions(usages, RetentionConfig(max_age_s=0, max_total_bytes=15), 320) == [
        "a",
        "b",
    ]
    assert plan_deletions(usages, RetentionConfig(max_age_s=0, max_total_bytes=30), 320) == []


def test_merge_sums_logs_and_metrics() -> None:
    merged = merge_usage([JobUsage("a", 1.0, 5)], [JobUsage("a", 3.0, 7), JobUsage("b", 2.0, 1)])
    assert sorted(merged, key=lambda u: u.job_id) == [JobUsage("a", 3.0, 12), JobUsage("b", 2.0, 1)]


def _service(tmp_path: Path, retention: RetentionConfig) -> PersistService:
    return PersistService(PersistConfig.for_root(tmp_path, retention=retention, segment_bytes=4096))


def _write(service: PersistService, job: str, size: int, mtime: float) -> None:
    service.logs.append(job, [Record(1, 1, os.urandom(size))], Marker("s", 1))
    service.metrics.append(job, [Record(1, 1, b"m")], Marker("s", 1))
    service.logs.seal(job)
    service.metrics.seal(job)
    for kind in (service.logs.root, service.metrics.root):
        for path in (kind / job).iterdir():
            os.utime(path, (mtime, mtime))


def test_sweep_deletes_oldest_by_size(tmp_path: Path) -> None:
    service = _service(tmp_path, RetentionConfig(max_age_s=0, max_total_bytes=25_000))
    for index, job in enumerate(["old", "mid", "new"]):
        _write(service, job, 10_000, 1000.0 + index)
    assert service.sweep(now=2000.0) == ["old"]
    assert not (tmp_path / "logs" / "old").exists()
    assert not (tmp_path / "metrics" / "old").exists()
    assert (tmp_path / "logs" / "mid").exists()


def test_sweep_deletes_by_age(tmp_path: Path) -> None:
    service = _service(tmp_path, RetentionConfig(max_age_s=7 * DAY, max_total_bytes=0))
    now = 100 * DAY
    _write(service, "ancient", 100, now - 8 * DAY)
    _write(service, "recent", 100, now - 1 * DAY)
    assert service.sweep(now=now) == ["ancient"]
    assert service.logs.snapshot("recent") is not None
