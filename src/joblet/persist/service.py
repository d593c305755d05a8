"""The persist helper: IPC ingest, gRPC queries, segment rolling and retention.

Run alone with `python -m joblet.persist --config FILE`; the daemon starts it as
a child and restarts it when it dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from joblet.api import persist_pb2_grpc as pb_grpc
from joblet.errors import JobletError
from joblet.persist.archive.backend import HistoryBackend, open_backend
from joblet.persist.archive.objects import ArchiveError
from joblet.persist.config import (
    PersistConfig,
    RetentionConfig,
    TlsListenConfig,
    load_persist_config,
    resolve_node_id,
)
from joblet.persist.ingest import Ingest
from joblet.persist.ipc_server import remove_stale_socket, start_ipc_server
from joblet.persist.query_service import PersistQueryServicer
from joblet.persist.retention import merge_usage, over_size, plan_deletions, under_pressure
from joblet.persist.store import HistoryStore, JobUsage

if TYPE_CHECKING:
    from joblet.persist.archive.cloudwatch import CloudWatchSink

log = logging.getLogger(__name__)

ROLL_CHECK_S = 1.0


class PersistService:
    """Owns the stores, both servers and the periodic tasks, from start to stop."""

    def __init__(self, config: PersistConfig) -> None:
        self.config = config
        self.logs = HistoryStore(config.logs_dir, config.segment_bytes, config.compression_level)
        self.metrics = HistoryStore(
            config.metrics_dir, config.segment_bytes, config.compression_level
        )
        self.ingest = Ingest(self.logs, self.metrics)
        self.cloudwatch: CloudWatchSink | None = None
        if config.cloudwatch is not None:
            from joblet.persist.archive.cloudwatch import CloudWatchSink

            self.cloudwatch = CloudWatchSink(config.cloudwatch)
            self.ingest.log_tap = self.cloudwatch.offer
        self.backend: HistoryBackend = open_backend(
            config.s3,
            resolve_node_id(config) if config.s3 is not None else "",
            {"logs": self.logs, "metrics": self.metrics},
            config.archive_dir,
        )
        self.ingest.on_delete = self.backend.forget
        self.retention_blocked = 0

    async def run(self, stop: asyncio.Event) -> None:
        # One writer thread: requests from every connection are applied in the
        # order they arrive, and compression runs outside the event loop.
        writer_thread = ThreadPoolExecutor(1, thread_name_prefix="persist-writer")
        for store in (self.logs, self.metrics):
            checked = await asyncio.get_running_loop().run_in_executor(writer_thread, store.check)
            log.info("persist: checked %d stored histories under %s", checked, store.root)
        ipc = await start_ipc_server(self.config.ipc_socket, self.ingest, writer_thread)
        grpc_server = await self._start_grpc()
        log.info(
            "persist serving IPC on %s and queries on %s",
            self.config.ipc_socket,
            self.config.grpc_socket,
        )
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._roll_loop()),
                    group.create_task(self._sweeps()),
                    group.create_task(self.backend.run()),
                ]
                if self.cloudwatch is not None:
                    tasks.append(group.create_task(self.cloudwatch.run()))
                await stop.wait()
                for task in tasks:
                    task.cancel()
        finally:
            ipc.close()
            await grpc_server.stop(grace=1.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ipc.wait_closed(), 2.0)
            writer_thread.shutdown(wait=True)
            if self.cloudwatch is not None and not await asyncio.to_thread(
                self.cloudwatch.flush, 3.0
            ):
                log.warning("persist stopped with events not sent to CloudWatch Logs")
            self.logs.close()
            self.metrics.close()
            log.info("persist stopped; open segments finished")

    def sweep(self, now: float | None = None) -> list[str]:
        """Apply retention once; returns the deleted job ids. With an archive,
        only jobs it holds are deleted here, oldest first; the others stay
        until it takes them, however full the disk."""
        now = now or time.time()
        usages = merge_usage(self.logs.usage(), self.metrics.usage())
        policy = under_pressure(
            self.config.retention, sum(u.stored_bytes for u in usages), _free_bytes(self.config)
        )
        if self.backend.name == "local":
            doomed = plan_deletions(usages, policy, now)
            for job_id in doomed:
                self.logs.delete(job_id)
                self.metrics.delete(job_id)
        else:
            archived = self.backend.archived()
            planned = plan_deletions(usages, policy, now, deletable=archived)
            doomed = [job_id for job_id in planned if self.backend.drop(job_id)]
            self._report_blocked(usages, doomed, archived, policy)
            try:
                self.backend.sweep(now)
            except ArchiveError as exc:
                log.warning("archive retention skipped (the store failed): %s", exc)
        if doomed:
            log.info("retention deleted the history of %d job(s): %s", len(doomed), doomed)
        return doomed

    def _report_blocked(
        self, usages: list[JobUsage], doomed: list[str], archived: set[str], policy: RetentionConfig
    ) -> None:
        excess = over_size(usages, doomed, policy)
        if excess <= 0:
            return
        waiting = sum(1 for u in usages if u.job_id not in archived)
        self.retention_blocked += 1
        log.error(
            "local history is %d bytes over retention.maxTotalSize (or what retention.minFree "
            "leaves); %d job(s) are kept because the archive has not taken them yet",
            excess, waiting,
        )  # fmt: skip

    async def _start_grpc(self) -> grpc.aio.Server:
        server = grpc.aio.server()
        pb_grpc.add_PersistQueryServicer_to_server(  # type: ignore[no-untyped-call]
            PersistQueryServicer(
                self.logs, self.metrics, self.ingest.stats, self.backend, self._counters
            ),
            server,
        )
        remove_stale_socket(self.config.grpc_socket)
        server.add_insecure_port(f"unix:{self.config.grpc_socket}")
        if self.config.listen is not None:
            server.add_secure_port(self.config.listen.address, _tls(self.config.listen))
        await server.start()
        os.chmod(self.config.grpc_socket, 0o600)
        return server

    def _counters(self) -> dict[str, int]:
        stats = self.backend.stats
        return {
            "archived_jobs": stats.jobs_archived,
            "segments_uploaded": stats.segments_uploaded,
            "upload_failures": stats.upload_failures,
            "local_dropped": stats.local_dropped,
            "remote_deleted": stats.remote_deleted,
            "retention_blocked": self.retention_blocked,
            "cloudwatch_sent": self.cloudwatch.sent_events if self.cloudwatch else 0,
            "cloudwatch_dropped": self.cloudwatch.dropped_events if self.cloudwatch else 0,
        }

    async def _roll_loop(self) -> None:
        while True:
            await asyncio.sleep(min(ROLL_CHECK_S, self.config.segment_time_s))
            self.logs.roll(self.config.segment_time_s)
            self.metrics.roll(self.config.metrics_segment_time_s)

    async def _sweeps(self) -> None:
        while True:
            try:
                # Off the loop: with an archive, the sweep calls the store.
                await asyncio.to_thread(self.sweep)
            except (OSError, ArchiveError) as exc:
                log.error("retention sweep failed: %s", exc)
            await asyncio.sleep(self.config.retention.sweep_interval_s)


def _free_bytes(config: PersistConfig) -> int:
    try:
        stat = os.statvfs(config.logs_dir)  # where logs, the bulk of it, live
    except OSError:
        return 2**62  # unknown: no pressure
    return stat.f_bavail * stat.f_frsize


def _tls(listen: TlsListenConfig) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(listen.server_key.encode(), listen.server_cert.encode())],
        root_certificates=listen.ca_cert.encode(),
        require_client_auth=True,
    )


async def run_until_signal(config: PersistConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await PersistService(config).run(stop)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="joblet persist", description="Joblet's log and metric history service."
    )
    parser.add_argument("--config", type=Path, required=True, help="joblet-config.yml")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s persist %(name)s: %(message)s",
        stream=sys.stderr,
    )
    faulthandler.enable()  # a crash in a C extension leaves its stacks in the log
    try:
        asyncio.run(run_until_signal(load_persist_config(args.config)))
    except JobletError as exc:
        print(f"persist: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"persist: error: {exc}", file=sys.stderr)
        return 1
    return 0
