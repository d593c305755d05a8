"""One behaviour, four stores: every StateBackend must pass every test here.

The memory backend is the fake other tests use; running it through the same
suite as SQLite, a real redis-server and DynamoDB (moto_server) keeps it honest.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from joblet.state.backends import StateBackend
from joblet.state.backends.memory import MemoryBackend
from joblet.state.config import DynamoConfig, RedisConfig

BACKENDS = ["memory", "sqlite", "redis", "dynamodb"]


async def open_redis(port: int, prefix: str) -> StateBackend:
    from joblet.state.backends.redis import RedisBackend

    return await RedisBackend.open(RedisConfig(port=port, key_prefix=prefix))


async def open_dynamo(endpoint: str, table: str, ttl_days: float = 0.0) -> StateBackend:
    from joblet.state.backends.dynamodb import DynamoBackend

    config = DynamoConfig(endpoint=endpoint, table=table, create_table=True, ttl_days=ttl_days)
    return await DynamoBackend.open(config)


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateBackend]:
    name = request.param
    unique = uuid.uuid4().hex[:8]
    opened: StateBackend
    if name == "memory":
        opened = MemoryBackend()
    elif name == "sqlite":
        from joblet.state.backends.sqlite import SqliteBackend

        opened = await SqliteBackend.open(tmp_path / "state" / "jobs.db")
    elif name == "redis":
        opened = await open_redis(request.getfixturevalue("redis_port"), f"t{unique}:")
    else:
        request.getfixturevalue("aws_credentials")
        opened = await open_dynamo(request.getfixturevalue("moto_endpoint"), f"jobs-{unique}")
    yield opened
    await opened.close()


async def test_get_of_unknown_job_is_none(backend: StateBackend) -> None:
    assert await backend.get("nope") is None
    assert await backend.list_all() == []


async def test_put_then_get(backend: StateBackend) -> None:
    await backend.put("a", b'{"id":"a"}')
    assert await backend.get("a") == b'{"id":"a"}'
    assert await backend.list_all() == [("a", b'{"id":"a"}')]


async def test_put_overwrites(backend: StateBackend) -> None:
    await backend.put("a", b"v1")
    await backend.put("a", b"v2")
    assert await backend.get("a") == b"v2"
    assert await backend.list_all() == [("a", b"v2")]


async def test_delete(backend: StateBackend) -> None:
    await backend.put("a", b"1")
    await backend.put("b", b"2")
    await backend.delete("a")
    await backend.delete("never-existed")
    assert await backend.get("a") is None
    assert await backend.list_all() == [("b", b"2")]


async def test_many_jobs(backend: StateBackend) -> None:
    expected = {f"job-{i:04d}": f'{{"n":{i}}}'.encode() for i in range(300)}
    for job_id, record in expected.items():
        await backend.put(job_id, record)
    assert dict(await backend.list_all()) == expected
    assert len(await backend.list_all()) == 300


async def test_unicode_ids_and_records(backend: StateBackend) -> None:
    job_id = "jöb-✓-日本"
    record = '{"name":"héllo wörld ✓ 日本語 🚀"}'.encode()
    await backend.put(job_id, record)
    assert await backend.get(job_id) == record
    assert await backend.list_all() == [(job_id, record)]


async def test_large_and_binary_records(backend: StateBackend) -> None:
    # DynamoDB's item limit is 400 KB; everything else takes much more.
    large = bytes(range(256)) * 1200
    await backend.put("big", large)
    assert await backend.get("big") == large


async def test_expired_records_are_never_returned(backend: StateBackend) -> None:
    # Long enough to be read back on a loaded host before it expires.
    await backend.put("short", b"s", ttl_s=1.5)
    await backend.put("forever", b"f")
    assert await backend.get("short") == b"s"
    await asyncio.sleep(1.7)  # past its expiry (a slower host only adds to it)
    assert await backend.get("short") is None
    assert await backend.list_all() == [("forever", b"f")]


async def test_put_after_expiry_revives(backend: StateBackend) -> None:
    await backend.put("j", b"old", ttl_s=0.2)
    await asyncio.sleep(0.3)
    await backend.put("j", b"new")
    assert await backend.get("j") == b"new"


async def test_redis_key_prefixes_isolate(redis_port: int) -> None:
    # '*' in a prefix must be taken literally by the SCAN pattern.
    unique = uuid.uuid4().hex[:8]
    first = await open_redis(redis_port, f"iso{unique}*")
    second = await open_redis(redis_port, f"iso{unique}X")
    try:
        await first.put("a", b"from first")
        await second.put("a", b"from second")
        await second.put("b", b"only second")
        assert await first.list_all() == [("a", b"from first")]
        assert sorted(await second.list_all()) == [("a", b"from second"), ("b", b"only second")]
        await first.delete("a")
        assert await second.get("a") == b"from second"
    finally:
        await first.close()
        await second.close()


@pytest.mark.usefixtures("aws_credentials")
async def test_dynamo_filters_expired_items_moto_keeps(moto_endpoint: str) -> None:
    import boto3  # type: ignore[import-untyped]

    table = f"ttl-{uuid.uuid4().hex[:8]}"
    backend = await open_dynamo(moto_endpoint, table, ttl_days=1)
    try:
        await backend.put("default-ttl", b"d")
        await backend.put("short", b"s", ttl_s=0.2)
        await asyncio.sleep(0.3)
        client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
        raw = client.scan(TableName=table)["Items"]
        assert {item["job_id"]["S"] for item in raw} == {"default-ttl", "short"}
        default_expiry = next(i for i in raw if i["job_id"]["S"] == "default-ttl")
        assert float(default_expiry["expires_at"]["N"]) > 0
        ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert ttl["AttributeName"] == "expires_at"
        assert await backend.list_all() == [("default-ttl", b"d")]
    finally:
        await backend.close()


@pytest.mark.usefixtures("aws_credentials")
async def test_dynamo_missing_table_is_a_clear_error(moto_endpoint: str) -> None:
    from joblet.state.backends import StateBackendError
    from joblet.state.backends.dynamodb import DynamoBackend

    config = DynamoConfig(endpoint=moto_endpoint, table="absent", create_table=False)
    with pytest.raises(StateBackendError, match="createTable"):
        await DynamoBackend.open(config)


async def test_redis_unreachable_is_a_clear_error() -> None:
    from joblet.state.backends import StateBackendError

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StateBackendError, match="redis"):
        await open_redis(port, "x:")


async def test_workflow_records_share_the_store_with_jobs(
    backend: StateBackend, tmp_path: Path
) -> None:
    """Through the helper's protocol: a workflow record, written in order with
    its jobs' records, comes back apart from them; a deleted one does not."""
    from joblet.jobs.model import Job, JobSpec, JobStatus
    from joblet.state.client import StateClient
    from joblet.state.retry import WritePolicy
    from joblet.state.service import StateService

    policy = WritePolicy(timeout_s=5.0, retries=2, backoff_s=0.01, max_backoff_s=0.05)
    sock = tmp_path / "run" / "state.sock"
    job_id = str(uuid.uuid4())
    job = Job(id=job_id, spec=JobSpec(command="true"), status=JobStatus.PENDING)
    async with StateService(backend, sock, policy):
        client = await StateClient.connect(sock)
        try:
            client.put_workflow("wf-1", b'{"name": "one"}')
            client.put(job)
            client.put_workflow("wf-2", b'{"name": "two"}')
            client.put_workflow("wf-1", b'{"name": "one", "started": ["a"]}')
            client.delete_workflow("wf-2")
            assert await client.stored(10.0)
            loaded = await client.load(10.0)
        finally:
            await client.close()
    assert [j.id for j in loaded.jobs] == [job_id]
    assert loaded.jobs[0].status is JobStatus.PENDING
    assert loaded.workflows == [("wf-1", b'{"name": "one", "started": ["a"]}')]


async def test_priority_and_preemption_fields_round_trip(backend: StateBackend) -> None:
    """A job's priority, preemption settings and count come back from every
    backend as they went in (what a restarted daemon orders and requeues by)."""
    from joblet.jobs.model import Job, JobSpec, JobStatus
    from joblet.jobs.serialization import job_from_json, job_to_json

    spec = JobSpec(
        command="true", priority=-250, preemptible=True, on_preempt="stop", stop_grace_s=1.5
    )
    job = Job(
        id="prio-job", spec=spec, status=JobStatus.QUEUED, created_at=1.0, queued_at=2.5,
        wait_reason="preempted by x, requeued", preemptions=2, preempted_for="",
        requeue_due=False,
    )  # fmt: skip
    stopped = Job(
        id="stopped-job", spec=spec, status=JobStatus.STOPPED, preemptions=1,
        requeue_due=True, end_reason="preempted by y",
    )  # fmt: skip
    for record in (job, stopped):
        await backend.put(record.id, job_to_json(record))
    loaded = {job_id: job_from_json(blob) for job_id, blob in await backend.list_all()}
    assert loaded == {"prio-job": job, "stopped-job": stopped}
