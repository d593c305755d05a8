"""DynamoDB: a managed store, one item per job, optionally expiring.

Items: `job_id` (S, the hash key), `record` (B), `expires_at` (N, unix
seconds; the table's TTL attribute). DynamoDB deletes expired items only
eventually (and moto never does), so reads filter them out themselves.
boto3 is blocking and an optional extra (`joblet[dynamodb]`): it is imported
only here and driven from one dedicated thread, which also keeps operations in
the order they were awaited. Credentials come from boto3's usual chain
(environment, ~/.aws, instance role).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from joblet.state.backends.base import StateBackendError, expiry, is_expired
from joblet.state.config import DynamoConfig

T = TypeVar("T")
TTL_ATTRIBUTE = "expires_at"
_DAY_S = 86400.0


class DynamoBackend:
    def __init__(self, client: Any, config: DynamoConfig, executor: ThreadPoolExecutor) -> None:
        self._client = client
        self._config = config
        self._executor = executor

    @classmethod
    async def open(cls, config: DynamoConfig) -> DynamoBackend:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-dynamodb")
        try:
            client = await _in_thread(executor, lambda: _make_client(config))
            backend = cls(client, config, executor)
            await backend._run(backend._ensure_table)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return backend

    async def _run(self, fn: Callable[[], T]) -> T:
        return await _in_thread(self._executor, fn)

    async def put(self, job_id: str, record: bytes, ttl_s: float | None = None) -> None:
        if ttl_s is None and self._config.ttl_days > 0:
            ttl_s = self._config.ttl_days * _DAY_S
        item: dict[str, Any] = {"job_id": {"S": job_id}, "record": {"B": bytes(record)}}
        expires_at = expiry(ttl_s)
        if expires_at is not None:
            item[TTL_ATTRIBUTE] = {"N": f"{expires_at:.3f}"}
        table = self._config.table
        await self._run(lambda: self._client.put_item(TableName=table, Item=item))

    async def delete(self, job_id: str) -> None:
        key = {"job_id": {"S": job_id}}
        table = self._config.table
        await self._run(lambda: self._client.delete_item(TableName=table, Key=key))

    async def get(self, job_id: str) -> bytes | None:
        key = {"job_id": {"S": job_id}}
        table = self._config.table
        reply = await self._run(
            lambda: self._client.get_item(TableName=table, Key=key, ConsistentRead=True)
        )
        item = reply.get("Item")
        return None if item is None or _item_expired(item) else bytes(item["record"]["B"])

    async def list_all(self) -> list[tuple[str, bytes]]:
        items = await self._run(self._scan)
        now = time.time()
        return [
            (item["job_id"]["S"], bytes(item["record"]["B"]))
            for item in items
            if not _item_expired(item, now)
        ]

    async def close(self) -> None:
        try:
            await self._run(self._client.close)
        finally:
            self._executor.shutdown(wait=False)

    def _scan(self) -> list[dict[str, Any]]:
        paginator = self._client.get_paginator("scan")
        items: list[dict[str, Any]] = []
        for page in paginator.paginate(TableName=self._config.table, ConsistentRead=True):
            items.extend(page.get("Items", []))
        return items

    def _ensure_table(self) -> None:
        name = self._config.table
        try:
            self._client.describe_table(TableName=name)
            return
        except self._client.exceptions.ResourceNotFoundException:
            if not self._config.create_table:
                raise StateBackendError(
                    f"dynamodb table {name!r} does not exist (set dynamodb.createTable: true)"
                ) from None
        self._client.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self._client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        self._client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )


def _item_expired(item: dict[str, Any], now: float | None = None) -> bool:
    raw = item.get(TTL_ATTRIBUTE)
    return raw is not None and is_expired(float(raw["N"]), now)


def _make_client(config: DynamoConfig) -> Any:
    try:
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]
    except ImportError as exc:
        raise StateBackendError(
            "the dynamodb state backend needs boto3: pip install 'joblet[dynamodb]'"
        ) from exc
    session = boto3.session.Session(region_name=config.region)
    return session.client(
        "dynamodb",
        endpoint_url=config.endpoint or None,
        config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}),
    )


async def _in_thread(executor: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
    """`fn()` on the backend's thread; boto errors become StateBackendError."""
    try:
        return await asyncio.get_running_loop().run_in_executor(executor, fn)
    except _boto_errors() as exc:
        raise StateBackendError(f"dynamodb: {exc}") from exc


def _boto_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
    except ImportError:  # boto3 absent: _make_client says so
        return ()
    return (BotoCoreError, ClientError)
