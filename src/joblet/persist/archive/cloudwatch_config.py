"""`persist.cloudwatch:`: a live copy of every job's log in CloudWatch Logs (pure).

persist:
  cloudwatch:
    logGroup: /joblet/prod    # empty or absent: off
    region: us-east-1
    endpointUrl: ""           # a test server; empty: AWS
    accessKeyId: ""           # empty: the usual AWS chain
    secretAccessKey: ""
    createGroup: true         # create the group at start when missing
    flushInterval: 1s         # the longest an event waits before it is sent
    maxBuffer: 64MB           # held while CloudWatch is away; the oldest go past it
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joblet.config.keys import Schema
from joblet.config.units import parse_duration_s, parse_size_bytes

CLOUDWATCH_KEYS: Schema = dict.fromkeys(
    (
        "logGroup",
        "region",
        "endpointUrl",
        "accessKeyId",
        "secretAccessKey",
        "createGroup",
        "flushInterval",
        "maxBuffer",
    )
)

_GROUP = re.compile(r"[\w./#-]{1,512}")


@dataclass(frozen=True)
class CloudWatchConfig:
    log_group: str
    region: str = "us-east-1"
    endpoint_url: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    create_group: bool = True
    flush_interval_s: float = 1.0
    max_buffer_bytes: int = 64 * 1000**2


def parse_cloudwatch(raw: Any) -> CloudWatchConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError("'cloudwatch' must be a mapping")
    group = str(raw.get("logGroup", "") or "")
    if not group:
        return None
    if not _GROUP.fullmatch(group):
        raise ValueError(f"cloudwatch.logGroup {group!r} has characters CloudWatch refuses")
    key_id, secret = (
        str(raw.get("accessKeyId", "") or ""),
        str(raw.get("secretAccessKey", "") or ""),
    )
    if bool(key_id) != bool(secret):
        raise ValueError("cloudwatch.accessKeyId and cloudwatch.secretAccessKey go together")
    interval = parse_duration_s(raw.get("flushInterval", "1s"))
    if interval <= 0:
        raise ValueError("cloudwatch.flushInterval must be positive")
    return CloudWatchConfig(
        log_group=group,
        region=str(raw.get("region", "us-east-1") or "us-east-1"),
        endpoint_url=str(raw.get("endpointUrl", "") or ""),
        access_key_id=key_id,
        secret_access_key=secret,
        create_group=bool(raw.get("createGroup", True)),
        flush_interval_s=interval,
        max_buffer_bytes=parse_size_bytes(raw.get("maxBuffer", "64MB")),
    )
