"""The CloudWatch Logs copy against moto_server: one stream per job, every
event in order, batches within the limits, retried while the service fails."""

from __future__ import annotations

import time
import uuid
from typing import Any

import boto3
import pytest

from joblet.persist.archive.cloudwatch import CloudWatchError, CloudWatchSink
from joblet.persist.archive.cloudwatch_config import CloudWatchConfig
from joblet.persist.store.records import PackedBatch, Record

NOW = time.time_ns()


def _batch(seq: int, lines: list[bytes], start_ns: int) -> PackedBatch:
    return PackedBatch.of_records(seq, [Record(1, start_ns + i, d) for i, d in enumerate(lines)])


def _sink(endpoint: str, **overrides: Any) -> CloudWatchSink:
    config = CloudWatchConfig(f"/joblet/{uuid.uuid4().hex[:8]}", endpoint_url=endpoint, **overrides)
    sink = CloudWatchSink(config)
    sink._create_group()
    return sink


def _messages(endpoint: str, group: str, stream: str) -> list[str]:
    client = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1")
    found: list[str] = []
    token = None
    while True:
        args: dict[str, Any] = {"logGroupName": group, "logStreamName": stream,
                                "startFromHead": True}  # fmt: skip
        if token:
            args["nextToken"] = token
        page = client.get_log_events(**args)
        found += [e["message"] for e in page["events"]]
        if not page["events"] or page["nextForwardToken"] == token:
            return found
        token = page["nextForwardToken"]


def test_every_line_arrives_in_order_in_the_job_stream(
    moto_endpoint: str, aws_credentials: None
) -> None:
    sink = _sink(moto_endpoint)
    job = str(uuid.uuid4())
    lines = [b"line %05d\n" % i for i in range(12_000)]  # more than one batch
    sink.offer(job, [_batch(1, lines[:6000], NOW), _batch(2, lines[6000:], NOW + 6000)])
    assert sink.send_pending() == 12_000
    got = _messages(moto_endpoint, sink.config.log_group, job)
    assert got == [line.decode() for line in lines]


def test_while_the_service_is_away_events_wait_then_go_in_order(
    moto_endpoint: str, aws_credentials: None, fault_proxy: Any
) -> None:
    proxy = fault_proxy(int(moto_endpoint.rsplit(":", 1)[1]))
    sink = _sink(proxy.url)
    job = str(uuid.uuid4())
    sink.offer(job, [_batch(1, [b"a\n", b"b\n"], NOW)])
    proxy.mode = "drop"
    with pytest.raises(CloudWatchError):
        sink.send_pending()
    sink.offer(job, [_batch(2, [b"c\n"], NOW + 10)])
    proxy.mode = "pass"
    assert sink.send_pending() == 3
    assert _messages(moto_endpoint, sink.config.log_group, job) == ["a\n", "b\n", "c\n"]


def test_past_max_buffer_the_oldest_events_are_dropped_and_counted(
    moto_endpoint: str, aws_credentials: None
) -> None:
    sink = _sink(moto_endpoint, max_buffer_bytes=10 * (26 + 4))
    job = str(uuid.uuid4())
    sink.offer(job, [_batch(1, [b"%03d\n" % i for i in range(15)], NOW)])
    assert sink.dropped_events == 5
    sink.send_pending()
    got = _messages(moto_endpoint, sink.config.log_group, job)
    assert got == [f"{i:03d}\n" for i in range(5, 15)]
