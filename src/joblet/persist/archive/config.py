"""`persist.backend` and `persist.s3:` (pure parsing; boto3 is not imported here).

persist:
  backend: s3                 # local (default) | s3
  s3:
    bucket: joblet-history
    prefix: prod              # keys: PREFIX/NODE/JOB/{logs,metrics}/SEGMENT, .../manifest.json
    region: us-east-1
    endpointUrl: ""           # MinIO, Ceph, a test server; empty: AWS
    accessKeyId: ""           # empty: the usual AWS chain (env, files, instance role)
    secretAccessKey: ""
    serverSideEncryption: ""  # AES256 | aws:kms
    kmsKeyId: ""
    storageClass: ""          # STANDARD_IA, GLACIER_IR, ...
    keepLocal: 1h             # after a confirmed upload, how long the local copy stays
    maxAge: 90d               # archived jobs older than this are deleted (0: never)
    uploadInterval: 5s        # how often finished segments are looked for
    maxBackoff: 60s           # the longest wait between retries while S3 fails
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joblet.config.keys import Schema
from joblet.config.units import parse_duration_s

BACKENDS = ("local", "s3")

S3_KEYS: Schema = dict.fromkeys(
    (
        "bucket",
        "prefix",
        "region",
        "endpointUrl",
        "accessKeyId",
        "secretAccessKey",
        "serverSideEncryption",
        "kmsKeyId",
        "storageClass",
        "keepLocal",
        "maxAge",
        "uploadInterval",
        "maxBackoff",
    )
)

# S3's bucket naming rules, simplified: lower case, digits, dots, dashes.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SSE = ("", "AES256", "aws:kms")


@dataclass(frozen=True)
class S3Config:
    bucket: str
    prefix: str = ""
    region: str = "us-east-1"
    endpoint_url: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    server_side_encryption: str = ""
    kms_key_id: str = ""
    storage_class: str = ""
    keep_local_s: float = 3600.0
    max_age_s: float = 90 * 86400.0
    upload_interval_s: float = 5.0
    max_backoff_s: float = 60.0


def parse_backend(section: Mapping[str, Any]) -> S3Config | None:
    """None for `local`; the S3 settings for `s3`. ValueError says what is wrong."""
    backend = str(section.get("backend", "local") or "local")
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} must be one of {', '.join(BACKENDS)}")
    raw = section.get("s3") or {}
    if not isinstance(raw, Mapping):
        raise ValueError("'s3' must be a mapping")
    if backend == "local":
        return None
    return parse_s3(raw)


def parse_s3(raw: Mapping[str, Any]) -> S3Config:
    bucket = str(raw.get("bucket", "") or "")
    if not _BUCKET.fullmatch(bucket):
        raise ValueError(f"s3.bucket {bucket!r} is not a valid bucket name")
    prefix = str(raw.get("prefix", "") or "").strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ValueError(f"s3.prefix {prefix!r} has an empty, '.' or '..' part")
    sse = str(raw.get("serverSideEncryption", "") or "")
    if sse not in _SSE:
        raise ValueError(f"s3.serverSideEncryption {sse!r} must be AES256 or aws:kms")
    key_id, secret = str(raw.get("accessKeyId", "") or ""), str(raw.get("secretAccessKey", ""))
    if bool(key_id) != bool(secret or ""):
        raise ValueError("s3.accessKeyId and s3.secretAccessKey go together")
    interval = parse_duration_s(raw.get("uploadInterval", "5s"))
    backoff = parse_duration_s(raw.get("maxBackoff", "60s"))
    if interval <= 0 or backoff <= 0:
        raise ValueError("s3.uploadInterval and s3.maxBackoff must be positive")
    return S3Config(
        bucket=bucket,
        prefix=prefix,
        region=str(raw.get("region", "us-east-1") or "us-east-1"),
        endpoint_url=str(raw.get("endpointUrl", "") or ""),
        access_key_id=key_id,
        secret_access_key=str(secret or ""),
        server_side_encryption=sse,
        kms_key_id=str(raw.get("kmsKeyId", "") or ""),
        storage_class=str(raw.get("storageClass", "") or ""),
        keep_local_s=parse_duration_s(raw.get("keepLocal", "1h")),
        max_age_s=parse_duration_s(raw.get("maxAge", "90d")),
        upload_interval_s=interval,
        max_backoff_s=backoff,
    )
