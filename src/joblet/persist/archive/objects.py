"""The object store: boto3's S3 client behind the few calls persist makes.

boto3 is imported here only, and this module only when `persist.backend` is
`s3`: the daemon, persist with the local backend and rnx never load it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from joblet.errors import ConfigError
from joblet.persist.archive.config import S3Config

MULTIPART_BYTES = 8 * 1024 * 1024
# A query's first range is small, so that its first bytes come quickly;
# then windows large enough that reading a whole log takes few requests.
FIRST_RANGE = 64 * 1024
RANGE = 8 * 1024 * 1024
HASH_STEP = 1024 * 1024


class ArchiveError(Exception):
    """The object store failed or could not be reached (retry later)."""


class Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path) -> str: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes | None: ...

    def open_reader(self, key: str, size: int, first: Future[Any] | None = None) -> Reader: ...

    def prefetch(self, key: str) -> Future[Any]: ...

    def list_keys(self, prefix: str) -> Iterator[str]: ...

    def list_dated(self, prefix: str) -> Iterator[tuple[str, float]]: ...

    def list_dirs(self, prefix: str) -> list[str]: ...

    def delete(self, keys: Iterable[str]) -> None: ...

    def abort_incomplete(self, prefix: str) -> int: ...


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_STEP):
            digest.update(chunk)
    return digest.hexdigest()


def open_s3(config: S3Config) -> S3Store:
    return S3Store(config)


class S3Store:
    """One bucket, one client (boto3 clients are thread-safe)."""

    def __init__(self, config: S3Config) -> None:
        try:
            import boto3  # type: ignore[import-untyped]
            from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]
            from botocore.config import Config  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ConfigError("persist.backend s3 needs boto3: pip install 'joblet[s3]'") from exc

        self._config = config
        kwargs: dict[str, Any] = {"region_name": config.region}
        if config.endpoint_url:
            kwargs["endpoint_url"] = config.endpoint_url
        if config.access_key_id:
            kwargs["aws_access_key_id"] = config.access_key_id
            kwargs["aws_secret_access_key"] = config.secret_access_key
        # Few retries inside boto3: the archiver's own backoff (with jitter)
        # takes over, and a query must not hang on a store that is away.
        botocore_config = Config(
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=16,
        )
        self._client = boto3.client("s3", config=botocore_config, **kwargs)
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_BYTES,
            multipart_chunksize=MULTIPART_BYTES,
            max_concurrency=4,
            use_threads=True,
        )
        self.bucket = config.bucket
        self._prefetcher = ThreadPoolExecutor(4, thread_name_prefix="archive-prefetch")

    def _errors(self) -> tuple[type[BaseException], ...]:
        from boto3.exceptions import Boto3Error  # type: ignore[import-untyped]
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        return (BotoCoreError, ClientError, Boto3Error, OSError)

    def _extra(self) -> dict[str, str]:
        extra: dict[str, str] = {}
        if self._config.server_side_encryption:
            extra["ServerSideEncryption"] = self._config.server_side_encryption
        if self._config.kms_key_id:
            extra["SSEKMSKeyId"] = self._config.kms_key_id
        if self._config.storage_class:
            extra["StorageClass"] = self._config.storage_class
        return extra

    def put_file(self, key: str, path: Path) -> str:
        """Upload a file the store checks against its SHA-256; returns that
        (hex). Below 8 MiB one PUT: botocore hashes the bytes as it reads
        them and the store refuses the object unless what it got matches.
        Above, a multipart upload, each part checked the same way, then the
        whole confirmed by size and the SHA-256 kept in its metadata."""
        # Local trouble (the file gone, unreadable) is an OSError, not the store's.
        size = path.stat().st_size
        if size < MULTIPART_BYTES:
            with path.open("rb") as body:
                try:
                    reply = self._client.put_object(
                        Bucket=self.bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256",
                        **self._extra(),
                    )  # fmt: skip
                    return base64.b64decode(reply["ChecksumSHA256"]).hex()
                except self._errors() as exc:
                    raise ArchiveError(f"uploading {key}: {exc}") from exc
                except (KeyError, ValueError) as exc:
                    raise ArchiveError(f"uploading {key}: the store sent no SHA-256") from exc
        sha256 = file_sha256(path)
        extra: dict[str, Any] = {
            **self._extra(),
            "Metadata": {"sha256": sha256},
            "ChecksumAlgorithm": "SHA256",
        }
        try:
            self._client.upload_file(
                str(path), self.bucket, key, ExtraArgs=extra, Config=self._transfer
            )
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except self._errors() as exc:
            raise ArchiveError(f"uploading {key}: {exc}") from exc
        if head.get("ContentLength") != size or head.get("Metadata", {}).get("sha256") != sha256:
            raise ArchiveError(f"uploaded {key} does not match {path} (size or checksum)")
        return sha256

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/json",
                **self._extra(),
            )  # fmt: skip
        except self._errors() as exc:
            raise ArchiveError(f"writing {key}: {exc}") from exc

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise ArchiveError(f"reading {key}: {exc}") from exc
        except self._errors() as exc:
            raise ArchiveError(f"reading {key}: {exc}") from exc

    def open_reader(self, key: str, size: int, first: Future[Any] | None = None) -> RangedReader:
        """`first`: the object's first range, asked for already (prefetch)."""
        return RangedReader(self, key, size, first)

    def prefetch(self, key: str) -> Future[Any]:
        """Ask for an object's first range now, on a thread (its body when
        it comes); the caller reads it through open_reader or cancels it."""
        return self._prefetcher.submit(self.get_range, key, 0, FIRST_RANGE - 1)

    def get_range(self, key: str, start: int, end: int) -> Any:
        """The streaming body of bytes start..end (inclusive)."""
        try:
            return self._client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}"
            )["Body"]
        except self._errors() as exc:
            raise ArchiveError(f"reading {key}: {exc}") from exc

    def list_keys(self, prefix: str) -> Iterator[str]:
        for key, _ in self.list_dated(prefix):
            yield key

    def list_dated(self, prefix: str) -> Iterator[tuple[str, float]]:
        """Keys under the prefix with their objects' last-modified times."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield str(item["Key"]), float(item["LastModified"].timestamp())
        except self._errors() as exc:
            raise ArchiveError(f"listing {prefix}: {exc}") from exc

    def list_dirs(self, prefix: str) -> list[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        )
        try:
            return [
                str(item["Prefix"]) for page in pages for item in page.get("CommonPrefixes", [])
            ]
        except self._errors() as exc:
            raise ArchiveError(f"listing {prefix}: {exc}") from exc

    def delete(self, keys: Iterable[str]) -> None:
        batch = list(keys)
        try:
            for start in range(0, len(batch), 1000):  # the API's limit per call
                objects = [{"Key": key} for key in batch[start : start + 1000]]
                self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})
        except self._errors() as exc:
            raise ArchiveError(f"deleting {len(batch)} object(s): {exc}") from exc

    def abort_incomplete(self, prefix: str) -> int:
        """Abort multipart uploads left by a persist that died mid-upload
        (their parts cost storage and are never served)."""
        try:
            found = self._client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
            uploads = found.get("Uploads", [])
            for upload in uploads:
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        except self._errors() as exc:
            raise ArchiveError(f"aborting uploads under {prefix}: {exc}") from exc
        return len(uploads)


class RangedReader:
    """A file-like reader of one object: ranged GETs, each streamed."""

    def __init__(
        self, store: S3Store, key: str, size: int, first: Future[Any] | None = None
    ) -> None:
        self._store = store
        self._key = key
        self._size = size
        self._pos = 0
        self._body: Any = None
        self._window_end = -1
        self._first = first

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            size = self._size - self._pos
        out = bytearray()
        while len(out) < size and self._pos < self._size:
            if self._body is None:
                self._open_window()
            try:
                chunk = self._body.read(min(size - len(out), self._window_end + 1 - self._pos))
            except Exception as exc:  # urllib3's and botocore's read errors alike
                raise ArchiveError(f"reading {self._key}: {exc}") from exc
            if not chunk:
                raise ArchiveError(f"{self._key} ended at byte {self._pos} of {self._size}")
            out += chunk
            self._pos += len(chunk)
            if self._pos > self._window_end:
                self._body.close()
                self._body = None
        return bytes(out)

    def _open_window(self) -> None:
        length = FIRST_RANGE if self._pos == 0 else RANGE
        self._window_end = min(self._size, self._pos + length) - 1
        first, self._first = self._first, None
        if first is not None and self._pos == 0:
            try:
                self._body = first.result()
                return
            except ArchiveError:
                pass  # asked for again below, with its error if it persists
        self._body = self._store.get_range(self._key, self._pos, self._window_end)

    def close(self) -> None:
        if self._first is not None:
            discard(self._first)
            self._first = None
        if self._body is not None:
            self._body.close()
            self._body = None


def discard(future: Future[Any]) -> None:
    """Let go of a prefetched range nobody will read."""
    if not future.cancel():
        future.add_done_callback(lambda done: done.exception() or done.result().close())
