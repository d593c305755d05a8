"""The S3 archive against a real S3 API (moto_server on loopback), with a
fault-injecting proxy between them: upload, manifest last, local copies
dropped only after confirmation, reads from the bucket, retention, faults."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from joblet.persist.archive import keys
from joblet.persist.archive.archiver import Archiver
from joblet.persist.archive.config import S3Config
from joblet.persist.archive.objects import ArchiveError, S3Store, file_sha256
from joblet.persist.archive.remote import RemoteHistory
from joblet.persist.store import HistoryStore, LogFilter, Marker, Record, read_logs

NODE = "node-a"


@pytest.fixture
def bucket(moto_endpoint: str, aws_credentials: None) -> str:
    name = f"history-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(
        Bucket=name
    )
    return name


def _s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


class Recording(S3Store):
    """The real store, with the order of writes and deletes noted."""

    def __init__(self, config: S3Config) -> None:
        super().__init__(config)
        self.calls: list[tuple[str, str]] = []

    def put_file(self, key: str, path: Path) -> str:
        sha256 = super().put_file(key, path)
        self.calls.append(("put", key))
        return sha256

    def put_bytes(self, key: str, data: bytes) -> None:
        super().put_bytes(key, data)
        self.calls.append(("put", key))

    def delete(self, keys_: Any) -> None:
        batch = list(keys_)
        super().delete(batch)
        self.calls += [("delete", key) for key in batch]


@pytest.fixture
def stores(tmp_path: Path) -> dict[str, HistoryStore]:
    return {
        "logs": HistoryStore(tmp_path / "logs", segment_bytes=64 * 1024, level=1),
        "metrics": HistoryStore(tmp_path / "metrics", segment_bytes=64 * 1024, level=1),
    }


def _config(bucket: str, endpoint: str, **overrides: Any) -> S3Config:
    values: dict[str, Any] = {"prefix": "prod", "endpoint_url": endpoint, "keep_local_s": 0.0}
    values.update(overrides)
    return S3Config(bucket, **values)


def _fill(
    store: HistoryStore, job: str, lines: int, payload: Callable[[int], bytes]
) -> list[Record]:
    written = []
    for batch in range(lines // 100):
        records = [
            Record(1, (batch * 100 + i + 1) * 1000, payload(batch * 100 + i)) for i in range(100)
        ]
        assert store.append(job, records, Marker("s", batch + 1))
        written += records
    return written


def _text(n: int) -> bytes:
    return b"line %08d of the job's output\n" % n


def _read(snapshot: Any) -> list[Record]:
    return [r for chunk in read_logs(snapshot, LogFilter()) for r in chunk]


@pytest.fixture
def archiver(
    tmp_path: Path, bucket: str, moto_endpoint: str, stores: dict[str, HistoryStore]
) -> Iterator[tuple[Archiver, Recording]]:
    config = _config(bucket, moto_endpoint)
    objects = Recording(config)
    yield Archiver(objects, config, NODE, stores, tmp_path / "archive"), objects


def test_finished_job_is_uploaded_manifest_last_then_served_from_the_bucket(
    archiver: tuple[Archiver, Recording], stores: dict[str, HistoryStore], bucket: str,
    moto_endpoint: str,
) -> None:  # fmt: skip
    arch, objects = archiver
    job = str(uuid.uuid4())
    written = _fill(stores["logs"], job, 3000, _text)
    samples = _fill(stores["metrics"], job, 200, lambda n: b'{"cpu": %d}' % n)
    assert arch.upload_pass() == 0  # running: closed segments go up, no manifest yet
    assert objects.calls and all("logs/seg-" in k or "metrics/seg-" in k for _, k in objects.calls)
    stores["logs"].seal(job)
    stores["metrics"].seal(job)
    assert arch.upload_pass() == 1
    listed = sorted(o["Key"] for o in _s3(moto_endpoint).list_objects_v2(Bucket=bucket)["Contents"])
    segments = sorted(os.listdir(stores["logs"].root / job))
    expected = {keys.manifest_key("prod", NODE, job)}
    expected |= {f"prod/{NODE}/{job}/logs/{n}" for n in segments if n.startswith("seg-")}
    assert set(listed) >= expected and all(k.startswith(f"prod/{NODE}/{job}/") for k in listed)
    assert objects.calls[-1] == ("put", keys.manifest_key("prod", NODE, job))
    found = RemoteHistory(objects, arch.config, NODE).manifest(job)
    assert found is not None
    for segment in found[1].segments("logs"):  # the checksums are the files' own
        assert segment.sha256 == file_sha256(stores["logs"].root / job / segment.info.name)
    # Uploaded and confirmed, keepLocal 0: the local copy goes.
    assert arch.drop_local(now=1e12) == [job]
    assert not (stores["logs"].root / job).exists()
    assert stores["logs"].snapshot(job) is None
    remote = RemoteHistory(objects, arch.config, "another-node")
    assert _read(remote.snapshot("logs", job)) == written
    assert _read(remote.snapshot("metrics", job)) == samples
    assert remote.snapshot("logs", str(uuid.uuid4())) is None
    # Reads from the start ask for the first range with the manifest: on
    # this node's prefix it is used, on another's it is let go.
    for node in (NODE, "another-node"):
        here = RemoteHistory(objects, arch.config, node)
        assert _read(here.snapshot("logs", job, from_start=True)) == written
        assert here.snapshot("logs", str(uuid.uuid4()), from_start=True) is None


def test_nothing_is_dropped_before_the_manifest(
    archiver: tuple[Archiver, Recording], stores: dict[str, HistoryStore]
) -> None:
    arch, _ = archiver
    job = str(uuid.uuid4())
    _fill(stores["logs"], job, 500, _text)
    arch.upload_pass()
    assert arch.drop_local(now=1e12) == []  # not sealed: no manifest, nothing dropped
    assert (stores["logs"].root / job).is_dir()


def test_a_large_segment_goes_up_in_parts_and_reads_back_whole(
    tmp_path: Path, bucket: str, moto_endpoint: str
) -> None:
    logs = HistoryStore(tmp_path / "logs", segment_bytes=64 * 1024 * 1024, level=1)
    config = _config(bucket, moto_endpoint)
    arch = Archiver(S3Store(config), config, NODE, {"logs": logs}, tmp_path / "archive")
    job = str(uuid.uuid4())
    written = _fill(logs, job, 1200, lambda n: os.urandom(10_000))  # 12 MB, incompressible
    logs.seal(job)
    assert arch.upload_pass() == 1
    key = keys.segment_key("prod", NODE, job, "logs", "seg-00000001.zst")
    head = _s3(moto_endpoint).head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] > 8 * 1024 * 1024 and "-" in head["ETag"]  # multipart
    arch.drop_local(now=1e12)
    remote = RemoteHistory(S3Store(config), config, NODE)
    assert _read(remote.snapshot("logs", job)) == written


def test_retention_deletes_whole_jobs_manifest_first(
    archiver: tuple[Archiver, Recording], stores: dict[str, HistoryStore], bucket: str,
    moto_endpoint: str,
) -> None:  # fmt: skip
    arch, objects = archiver
    jobs = [str(uuid.uuid4()) for _ in range(2)]
    for job in jobs:
        _fill(stores["logs"], job, 2000, _text)
        stores["logs"].seal(job)
    assert arch.upload_pass() == 2
    manifest = keys.manifest_key("prod", NODE, jobs[0])
    old = RemoteHistory(objects, arch.config, NODE).manifest(jobs[0])
    assert old is not None
    objects.calls.clear()
    aged = Archiver(objects, _config(bucket, moto_endpoint, max_age_s=60.0), NODE, stores,
                    arch.states.directory)  # fmt: skip
    assert aged.remote_sweep(now=old[1].archived_at + 30) == []
    assert sorted(aged.remote_sweep(now=old[1].archived_at + 3600)) == sorted(jobs)
    deleted = [k for op, k in objects.calls if op == "delete" and jobs[0] in k]
    assert deleted[0] == manifest and len(deleted) > 1
    assert "Contents" not in _s3(moto_endpoint).list_objects_v2(Bucket=bucket, Prefix="prod/")


@pytest.mark.parametrize("mode", ["drop", "slowdown", "reset"])
def test_faults_fail_the_pass_keep_local_data_and_the_retry_completes(
    mode: str, tmp_path: Path, bucket: str, moto_endpoint: str, fault_proxy: Any
) -> None:
    proxy = fault_proxy(int(moto_endpoint.rsplit(":", 1)[1]))
    proxy.mode = mode
    proxy.reset_after = 256 * 1024
    logs = HistoryStore(tmp_path / "logs", segment_bytes=64 * 1024 * 1024, level=1)
    config = _config(bucket, proxy.url)
    arch = Archiver(S3Store(config), config, NODE, {"logs": logs}, tmp_path / "archive")
    job = str(uuid.uuid4())
    written = _fill(logs, job, 1000, lambda n: os.urandom(1000))  # 1 MB
    logs.seal(job)
    with pytest.raises(ArchiveError):
        arch.upload_pass()
    assert proxy.seen[mode] >= 1
    assert arch.drop_local(now=1e12) == [] and (logs.root / job).is_dir()
    proxy.mode = "pass"
    assert arch.upload_pass() == 1
    assert arch.drop_local(now=1e12) == [job]
    remote = RemoteHistory(S3Store(_config(bucket, moto_endpoint)), config, NODE)
    assert _read(remote.snapshot("logs", job)) == written


def test_a_delayed_store_still_takes_the_upload(
    tmp_path: Path, bucket: str, moto_endpoint: str, fault_proxy: Any
) -> None:
    proxy = fault_proxy(int(moto_endpoint.rsplit(":", 1)[1]))
    proxy.mode, proxy.delay_s = "delay", 0.3
    logs = HistoryStore(tmp_path / "logs", segment_bytes=64 * 1024, level=1)
    config = _config(bucket, proxy.url)
    arch = Archiver(S3Store(config), config, NODE, {"logs": logs}, tmp_path / "archive")
    job = str(uuid.uuid4())
    _fill(logs, job, 300, _text)
    logs.seal(job)
    assert arch.upload_pass() == 1
    assert proxy.seen["delay"] >= 1


def test_unfinished_multipart_uploads_are_aborted(bucket: str, moto_endpoint: str) -> None:
    client = _s3(moto_endpoint)
    key = f"prod/{NODE}/{uuid.uuid4()}/logs/seg-00000001.zst"
    client.create_multipart_upload(Bucket=bucket, Key=key)
    store = S3Store(_config(bucket, moto_endpoint))
    assert store.abort_incomplete(f"prod/{NODE}/") == 1
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_record_after_the_manifest_gets_the_job_archived_again(
    archiver: tuple[Archiver, Recording], stores: dict[str, HistoryStore]
) -> None:
    arch, objects = archiver
    job = str(uuid.uuid4())
    _fill(stores["logs"], job, 300, _text)
    stores["logs"].seal(job)
    assert arch.upload_pass() == 1
    # A last sample after the job's end: the history opens again.
    stores["metrics"].append(job, [Record(1, 10**12, b'{"cpu": 1}')], Marker("m", 1))
    assert arch.drop_local(now=1e12) == []  # the manifest lacks it: kept
    assert arch.upload_pass() == 0  # still being written (LATE_S)
    arch.stores["metrics"]._open[job].last_write -= 10  # quiet since long enough
    assert arch.upload_pass() == 1
    remote = RemoteHistory(objects, arch.config, NODE)
    found = remote.manifest(job)
    assert found is not None and len(found[1].segments("metrics")) == 1
    assert arch.drop_local(now=1e12) == [job]


def test_export_from_the_bucket_of_a_job_another_node_archived(
    archiver: tuple[Archiver, Recording], stores: dict[str, HistoryStore], tmp_path: Path,
    bucket: str, moto_endpoint: str,
) -> None:  # fmt: skip
    from joblet.persist.archive.transfer import export_job, import_job
    from joblet.persist.config import PersistConfig

    arch, _ = archiver
    job = str(uuid.uuid4())
    written = _fill(stores["logs"], job, 3000, _text)
    stores["logs"].seal(job)
    assert arch.upload_pass() == 1
    assert arch.drop_local(now=1e12) == [job]
    other = PersistConfig.for_root(
        tmp_path / "other", s3=_config(bucket, moto_endpoint), node_id="node-b"
    )
    out = export_job(other, job, tmp_path / "export")
    assert import_job(PersistConfig.for_root(tmp_path / "third"), out) == job
    snapshot = HistoryStore(tmp_path / "third" / "logs", 4096, 1).snapshot(job)
    assert _read(snapshot) == written


def test_a_query_that_outlives_the_local_copy_reads_the_rest_from_the_bucket(
    tmp_path: Path, bucket: str, moto_endpoint: str, stores: dict[str, HistoryStore]
) -> None:
    from dataclasses import replace

    from joblet.persist.archive.backend import S3Backend

    config = _config(bucket, moto_endpoint)
    backend = S3Backend(S3Store(config), config, NODE, stores, tmp_path / "archive")
    job = str(uuid.uuid4())
    written = _fill(stores["logs"], job, 3000, _text)
    stores["logs"].seal(job)
    assert backend.archiver.upload_pass() == 1
    snapshot = stores["logs"].snapshot(job)
    assert snapshot is not None and len(snapshot.segments) > 1
    reading = read_logs(replace(snapshot, fallback=backend.fallback("logs", job)), LogFilter())
    first = next(reading)  # the first segment is open...
    assert backend.drop(job)  # ...when the local copy goes
    assert [*first, *(r for chunk in reading for r in chunk)] == written


def test_a_deleted_job_leaves_the_bucket_and_a_rewritten_log_stops_being_served(
    archiver: tuple[Archiver, Recording], stores: dict[str, HistoryStore], bucket: str,
    moto_endpoint: str,
) -> None:  # fmt: skip
    arch, objects = archiver
    gone, again = str(uuid.uuid4()), str(uuid.uuid4())
    for job in (gone, again):
        _fill(stores["logs"], job, 1000, _text)
        stores["logs"].seal(job)
    assert arch.upload_pass() == 2
    assert arch.drop_job(gone)
    remote = RemoteHistory(objects, arch.config, NODE)
    # Deleted after its local copy went: the archive's copy goes too, manifest first.
    arch.forget(gone, whole=True)
    objects.calls.clear()
    arch.upload_pass()
    deleted = [k for op, k in objects.calls if op == "delete"]
    assert deleted[0] == keys.manifest_key("prod", NODE, gone)
    assert not [k for k in _keys(moto_endpoint, bucket) if gone in k]
    assert remote.snapshot("logs", gone) is None
    # A log written again from the start (a restarted copy: persist deletes
    # the log first): not served from the bucket until it is archived again,
    # and its local copy is not dropped meanwhile.
    stores["logs"].delete(again)
    arch.forget(again, whole=False)
    assert not arch.drop_job(again)
    _fill(stores["logs"], again, 500, _text)
    arch.upload_pass()
    assert remote.snapshot("logs", again) is None
    stores["logs"].seal(again)
    assert arch.upload_pass() == 1
    assert len(_read(remote.snapshot("logs", again))) == 500
    # A new job's first delete (before its output) owes the store nothing.
    arch.forget(str(uuid.uuid4()), whole=False)
    assert arch.states.owed_deletions() == []


def _keys(endpoint: str, bucket: str) -> list[str]:
    listed = _s3(endpoint).list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_job_whose_files_fail_does_not_hold_up_the_others(
    archiver: tuple[Archiver, Recording], stores: dict[str, HistoryStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    arch, objects = archiver
    broken, fine = str(uuid.uuid4()), str(uuid.uuid4())
    for job in (broken, fine):
        _fill(stores["logs"], job, 1000, _text)
        stores["logs"].seal(job)
    real = objects.put_file

    def put_file(key: str, path: Path) -> str:
        if broken in key:  # as a segment file that cannot be read
            raise PermissionError(13, "Permission denied", str(path))
        return real(key, path)

    monkeypatch.setattr(objects, "put_file", put_file)
    assert arch.upload_pass() == 1
    assert arch.drop_local(now=1e12) == [fine]
    assert (stores["logs"].root / broken).is_dir()
