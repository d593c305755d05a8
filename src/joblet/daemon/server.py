"""The composition root: builds every part of the daemon from its config and
runs the gRPC server until SIGTERM or SIGINT.

A clean stop (SIGTERM, SIGINT) leaves the running jobs to the launcher, as a
daemon that dies (kill -9, a crash) does, but after the helpers have stored
every change and the launcher was told ("detach"): the launcher, the jobs and
everything they use stay for the next start, which re-attaches them (live
restore). A stop that stops the jobs (`joblet shutdown --stop-jobs`,
`joblet.stopJobsOnShutdown`), or one with no job running, leaves nothing in
the kernel (see `release_host`): the launcher exits, the bridges, the nftables
table and the cgroup groups go, filesystem volumes are unmounted. Their
definitions stay under the root and the next start makes it all again."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import uuid
from collections.abc import Awaitable, Callable, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, cast

import grpc

from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.cluster.config import ClusterConfig, load_cluster_config
from joblet.cluster.forward import Peers
from joblet.cluster.jobs import ClusterJobs
from joblet.cluster.placed import PlacedView
from joblet.cluster.placement import NODE_LOST
from joblet.cluster.registry import RedisLeases
from joblet.config.model import DaemonConfig, RootLayout
from joblet.daemon import forwarding, log_rpc, metrics_rpc
from joblet.daemon.cgroup_owner import claim_cgroup_parent, proven_own
from joblet.daemon.cluster_member import membership
from joblet.daemon.cluster_service import ClusterService
from joblet.daemon.forwarding import Router
from joblet.daemon.gpu_service import GpuService
from joblet.daemon.helpers import (
    LOAD_TIMEOUT_S,
    Helpers,
    JobListeners,
    StateListener,
    prepare_layout,
    start_helpers,
)
from joblet.daemon.job_service import JobService
from joblet.daemon.launcher_link import LauncherLink
from joblet.daemon.monitoring_service import MonitoringService
from joblet.daemon.network_service import NetworkService
from joblet.daemon.placement import REQUEUED_STOPPER, SETTLE_S, placing
from joblet.daemon.revocation_watch import RevocationWatch
from joblet.daemon.runtime_service import RuntimeService
from joblet.daemon.shutdown import clear_request, take_request
from joblet.daemon.startup_gate import StartupGate
from joblet.daemon.supervisor import HelperSupervisor
from joblet.daemon.volume_service import VolumeService
from joblet.daemon.workflow_service import WorkflowRpc
from joblet.errors import JobletError
from joblet.gpu.allocator import GpuAllocator
from joblet.gpu.node import open_gpus
from joblet.jobs.ending import FENCE_STOPPER
from joblet.jobs.manager import LOG_FILE, JobManager
from joblet.jobs.workspace_mount import protect_jobs_dir, release_jobs_dir
from joblet.logs.follow import LogHub
from joblet.logs.service import JobLogs
from joblet.metrics.cloud import detect_cloud
from joblet.metrics.history import PersistHistory
from joblet.metrics.host import HostCollector
from joblet.metrics.hub import MetricsHub
from joblet.metrics.prometheus import PrometheusExporter
from joblet.network.manager import NetworkManager
from joblet.resources.cleanup import own_jobs, remove_own
from joblet.resources.detect import create_cgroup_manager
from joblet.resources.interface import CgroupManager
from joblet.resources.ownership import ParentClaim
from joblet.retention.collected import KEY_PREFIX as COLLECTED_PREFIX
from joblet.retention.collected import CollectedIds
from joblet.retention.collected import RecordError as CollectedRecordError
from joblet.retention.collected import decode as decode_batch
from joblet.retention.collector import Collector
from joblet.runtimes.config import load_runtime_config
from joblet.runtimes.installer import Installer
from joblet.runtimes.reference import normalize_arch
from joblet.runtimes.store import RuntimeStore
from joblet.security.audit_log import AuditTrail
from joblet.security.interceptor import DEFAULT_RECEIVE_LIMIT, AuthInterceptor
from joblet.security.tls import server_credentials
from joblet.state.client import Loaded, StateClient
from joblet.state.config import StateConfig
from joblet.volumes.config import load_volumes_config
from joblet.volumes.manager import VolumeManager, entry_names
from joblet.workflows.loading import load_workflows
from joblet.workflows.shell import WorkflowShell
from joblet.workspaces.store import (
    WorkspaceStore,
    close_quota_store,
    open_quota_store,
    plain_store,
)

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 5.0
LAUNCHER_EXIT_S = 10.0  # its last jobs' output drains, its spares are reaped


def load_or_create_node_id(path: Path) -> str:
    """A stable node id, generated once and kept under the root."""
    try:
        node_id = path.read_text().strip()
        if node_id:
            return node_id
    except FileNotFoundError:
        pass
    node_id = str(uuid.uuid4())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(node_id + "\n")
    tmp.replace(path)
    return node_id


# A request to any method is at most this big, but for those carrying uploads.
RECEIVE_LIMIT = DEFAULT_RECEIVE_LIMIT
MAX_MESSAGE = 2**31 - 1
# Methods whose request carries files: uploads travel inside the message.
UPLOAD_METHODS = (
    "/joblet.JobService/RunJob",
    "/joblet.JobService/RunWorkflow",
    "/joblet.RuntimeService/InstallRuntimeFromLocal",
    "/joblet.RuntimeService/StreamingInstallRuntimeFromLocal",
)


def receive_limits(config: DaemonConfig) -> dict[str, int]:
    """The receive limit of each method that may exceed `RECEIVE_LIMIT`:
    joblet.maxUploadSize plus room for the rest of the request."""
    limit = max(config.jobs.max_upload_bytes + 16 * 1024 * 1024, RECEIVE_LIMIT)
    # gRPC takes an int32; uploads larger than one message can hold stream
    # through UploadFiles, which the limit bounds per session instead.
    return dict.fromkeys(UPLOAD_METHODS, min(limit, MAX_MESSAGE))


def _grpc_options(config: DaemonConfig) -> list[tuple[str, int]]:
    # grpc has one receive limit per server: the largest of any method. The
    # interceptor holds every other method to its own, after the role check.
    limit = max(receive_limits(config).values())
    return [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ("grpc.so_reuseport", 0),
    ]


def clean_leftovers(
    cgroups: CgroupManager, running: set[str], is_own: Callable[[str], bool]
) -> None:
    """Remove job cgroups of a previous run whose job is no longer alive, only those
    `is_own` proves are this root's: the parent may hold other daemons' groups."""
    foreign = 0
    for job_id in cgroups.leftover_job_ids():
        if job_id in running:
            continue
        if not is_own(job_id):
            foreign += 1
            continue
        cgroup = cgroups.open(job_id)
        if cgroup is None:
            continue
        try:
            cgroup.kill_all()
            cgroup.remove()
            log.info("removed leftover cgroup of job %s", job_id)
        except OSError:
            log.exception("could not remove leftover cgroup of job %s", job_id)
    if foreign:
        log.warning("left %d job cgroup(s) this root cannot prove are its own", foreign)


def clean_leftover_roots(jobs_dir: Path, running: set[str]) -> None:
    """Remove job root directories left by a launcher that died mid-job. Their
    mounts lived only in the job's mount namespace, so only the directory is left;
    rmdir (never rmtree) makes sure nothing under a live mount is touched."""
    for root in jobs_dir.glob("*/root"):
        if root.parent.name in running:
            continue
        try:
            root.rmdir()
            log.info("removed leftover root of job %s", root.parent.name)
        except OSError as exc:
            log.warning("leftover root %s not removed: %s", root, exc.strerror)


def release_host(
    networks: NetworkManager, cgroups: CgroupManager, volumes: VolumeManager, jobs_dir: Path
) -> list[str]:
    """Remove this daemon's kernel objects once no job runs and the launcher
    is gone: bridges and nftables table, job groups and the parent group,
    filesystem volumes' mounts and loop devices. Each part is tried even when
    another fails; returns what could not be removed."""
    problems: list[str] = []
    try:
        networks.remove_all()
    except (OSError, JobletError) as exc:
        problems.append(f"network: {exc}")
    try:
        foreign = remove_own(cgroups, own_jobs(jobs_dir)).foreign
    except (OSError, JobletError) as exc:
        problems.append(f"cgroups: {exc}")
    else:
        if foreign:
            problems.append(f"cgroups: the parent holds {len(foreign)} group(s) of another root")
    return problems + volumes.release_devices()


def _release_jobs_dir(layout: RootLayout) -> list[str]:
    try:
        release_jobs_dir(layout)
    except OSError as exc:
        return [f"the jobs directory's mount: {exc}"]
    return []


def open_workspaces(config: DaemonConfig) -> WorkspaceStore:
    """The workspaces' store: size-capped where joblet.maxWorkspaceSize asks
    and the host can, else plain directories (the reason logged once)."""
    layout, quota = config.layout, config.jobs.max_workspace_bytes
    if not quota:
        return plain_store(layout)
    try:
        store = open_quota_store(layout, quota)
    except OSError as exc:
        log.warning(
            "workspaces have no size limit: %s (joblet.maxWorkspaceSize needs btrfs)",
            exc.strerror or exc,
        )
        return plain_store(layout)
    log.info("workspaces: at most %d bytes each, in %s", quota, store.root)
    return store


def _close_workspaces(layout: RootLayout) -> list[str]:
    try:
        close_quota_store(layout)
    except OSError as exc:
        return [f"the workspaces' mount: {exc}"]
    return []


class Daemon:
    def __init__(
        self,
        config: DaemonConfig,
        config_path: Path,
        supervisors: Sequence[HelperSupervisor] | None = None,
        claim: ParentClaim | None = None,
    ) -> None:
        """`supervisors`: helpers already started by the caller, who stops them;
        `claim`: the cgroup parent, already claimed by the caller, who releases it."""
        self.config = config
        self.config_path = config_path
        self._supervisors = supervisors
        self._claim = claim
        self.server: grpc.aio.Server | None = None
        self.manager: JobManager | None = None
        self.workflows: WorkflowShell | None = None
        self.collector: Collector | None = None
        self.bound_port = 0
        self._stack = contextlib.AsyncExitStack()
        self._launcher: LauncherLink | None = None
        self._leases: RedisLeases | None = None
        self._cluster_name = ""
        self._cluster = ClusterConfig()
        self._listeners: JobListeners | None = None
        self._logs: JobLogs | None = None

    async def _open_metrics(
        self, helpers: Helpers, history: PersistHistory, logs: JobLogs
    ) -> MetricsHub:
        metrics = await self._stack.enter_async_context(
            MetricsHub(
                self.config.metrics,
                batch_sink=helpers.persist.send_metrics,
                finished=helpers.persist.metrics_finished,
                history_source=history,
            )
        )
        # A job's log end goes to persist after its final sample, so that the
        # end seals (and an archive takes) a complete metric history.
        logs.before_finish = metrics.final_taken
        return metrics

    async def start(self) -> None:
        config = self.config
        layout = config.layout
        prepare_layout(layout)
        if protect_jobs_dir(layout):
            log.info("%s bound nosuid,nodev on the host", layout.jobs)
        # Before the launcher starts: the inits it clones must see the mount.
        self._workspaces = await asyncio.to_thread(open_workspaces, config)
        claim = self._claim
        if claim is None:
            claim = claim_cgroup_parent(config)
            self._stack.callback(claim.release)
        node_id = config.server.node_id or load_or_create_node_id(layout.state / "node-id")
        cgroups = create_cgroup_manager(
            config.cgroup.mount_root, config.cgroup.parent, backend=config.cgroup.backend
        )
        self._cgroups = cgroups
        log.info("cgroups: %s", cgroups.version)
        helpers = await self._stack.enter_async_context(
            start_helpers(self.config_path, layout, self._supervisors)
        )
        # The jobs load (the helper reads its store, this loop decodes) while the
        # network, the volumes and the launcher come up. A launcher is started
        # at every start after a clean stop: its start overlaps the others.
        loading = asyncio.create_task(helpers.state.load(LOAD_TIMEOUT_S), name="load-jobs")
        self._stack.push_async_callback(_end_task, loading)
        starting = asyncio.create_task(self._start_launcher(), name="start-launcher")
        self._stack.push_async_callback(_end_task, starting)
        self._networks = NetworkManager(config.network, str(layout.network), node_id)
        await asyncio.to_thread(self._networks.start)
        self._volumes = VolumeManager(layout.volumes, load_volumes_config(self.config_path))
        for problem in await asyncio.to_thread(self._volumes.restore):
            log.warning("volume: %s", problem)
        launcher = await starting
        # What a previous run left is cleaned after listening (behind the
        # gate, before the restore): with thousands of job directories it
        # takes a while.
        self._leftovers = functools.partial(proven_own, claim, layout.jobs)
        self._runtimes = await self._open_runtimes()
        hub = LogHub()
        hub.start()
        self._stack.callback(hub.close)
        logs = JobLogs(hub, lambda job_id: layout.job_dir(job_id) / LOG_FILE,
                       helpers.persist, helpers.persist_query)  # fmt: skip
        self._stack.push_async_callback(logs.close)
        self._logs = logs
        history = PersistHistory(helpers.persist_config.grpc_socket)
        self._stack.push_async_callback(history.close)
        metrics = await self._open_metrics(helpers, history, logs)
        self._listeners = listeners = JobListeners(StateListener(helpers.state))
        self.manager = JobManager(
            config, cgroups, launcher, logs, node_id,
            listener=listeners, metrics=metrics, networks=self._networks,
            volumes=self._volumes, workspaces=self._workspaces, runtimes=self._runtimes,
            gpus=await asyncio.to_thread(open_node_gpus, config, cgroups),
        )  # fmt: skip
        launcher.on_exit(self.manager.on_exit)
        launcher.on_back(self.manager.on_launcher_back)
        await self._restore_and_serve(helpers, launcher, loading, listeners, (node_id, metrics))

    async def _restore_and_serve(
        self,
        helpers: Helpers,
        launcher: LauncherLink,
        loading: asyncio.Task[Loaded],
        listeners: JobListeners,
        serving: tuple[str, MetricsHub],
    ) -> None:
        """The previous run's jobs back, and the port open (`serving`: the
        node's id and metrics hub)."""
        node_id, metrics = serving
        manager = self.manager
        assert manager is not None
        self.workflows = WorkflowShell(manager, helpers.state)
        self._stack.push_async_callback(self.workflows.close)
        # Listening comes first, calls wait at the gate until the jobs are back
        # (startup_gate). A cluster member joins (and may be placed jobs) only
        # once they are: it keeps the order of restore, then serve.
        gate = StartupGate()
        early = not load_cluster_config(self.config_path).enabled
        if early:
            await self._serve(node_id, metrics, helpers.state_config, gate)
        try:
            await self._restore_all(helpers, launcher, loading, listeners)
        except BaseException:
            if self.server is not None:  # no call waits on a gate that never opens
                await self.server.stop(0)
            raise
        if not early:
            await self._serve(node_id, metrics, helpers.state_config, gate)
        gate.open()
        # The restored jobs' log copies start now, in batches, behind the calls
        # that waited at the gate.
        assert self._logs is not None
        copies = asyncio.create_task(self._logs.start_held(), name="restored-log-copies")
        self._stack.push_async_callback(_end_task, copies)

    async def _restore_all(
        self,
        helpers: Helpers,
        launcher: LauncherLink,
        loading: asyncio.Task[Loaded],
        listeners: JobListeners,
    ) -> None:
        """The jobs and workflows of the previous run taken over (their state
        loaded, running jobs re-attached), and what depends on them."""
        manager = self.manager
        assert manager is not None
        running_now = set(await launcher.running())
        layout = self.config.layout
        await asyncio.to_thread(clean_leftovers, self._cgroups, running_now, self._leftovers)
        await asyncio.to_thread(clean_leftover_roots, layout.jobs, running_now)
        loaded = await loading
        jobs = loaded.jobs
        running, orphaned = await launcher.running_detail()
        self._restore(listeners, helpers, loaded, running, orphaned)
        # Only now: restored jobs have pinned the builds they recorded.
        await asyncio.to_thread(self._runtimes.collect_garbage)
        launcher.keep_up()  # a broken connection is replaced, its jobs settled
        self._volumes.set_users_of(self._volume_users)
        self._networks.restore(j.id for j in manager.list_jobs() if not j.status.is_final)
        log.info("loaded %d job(s) from state (%s)", len(jobs), helpers.state_config.backend)

    async def _join_cluster(self, state: StateConfig, node_id: str) -> None:
        """This node's lease in the cluster's store, when cluster.name is set."""
        assert self.manager is not None
        cluster = load_cluster_config(self.config_path)
        self._leases = await self._stack.enter_async_context(
            membership(cluster, state, self.config, node_id=node_id, version=_version(),
                       free_slots=self.manager.free_slots)
        )  # fmt: skip
        self._cluster_name = cluster.name
        self._cluster = cluster

    def _forward_to_owners(
        self, server: grpc.aio.Server, jobs: JobService, others: ClusterJobs, node_id: str,
        metrics: MetricsHub,
    ) -> Router:  # fmt: skip
        """Calls about another member's job answered by that member."""
        assert self.manager is not None and self._leases is not None
        cluster, peers = self._cluster, None
        if cluster.node_cert:
            peers = Peers(self.config.security.ca_cert, cluster.node_cert, cluster.node_key,
                          cluster.forward_timeout_s)  # fmt: skip
            self._stack.push_async_callback(peers.close)
        else:
            log.warning("cluster: no cluster.nodeCert: calls about other nodes' jobs fail")
        raw = metrics_rpc.raw_history_handler(self.manager.history_ref, metrics).unary_unary
        assert raw is not None
        history = cast("Callable[[Any, Any], Awaitable[Any]]", raw)  # stubs: sync only
        router = Router(self.manager, others, self._leases, node_id, peers)
        forwarding.install(server, router, jobs, history)
        return router

    async def _fence_kill(self, job_id: str) -> None:
        """A placed job killed because this node may have lost the cluster."""
        assert self.manager is not None
        await self.manager.stop(job_id, FENCE_STOPPER, signal.SIGKILL, 0.0)

    async def _end_earlier_run(self, job_id: str) -> None:
        """A placed job claimed here again: its earlier run here goes first."""
        assert self.manager is not None
        await self.manager.end_earlier_run(job_id, REQUEUED_STOPPER, SETTLE_S)

    async def _fence_launcher(self, until: float, job_ids: list[str]) -> None:
        """The fence kept by the launcher too (see Launcher.set_fence)."""
        if self._launcher is not None:
            await self._launcher.fence(until, job_ids)

    def _gpu_count(self) -> int:
        gpus = None if self.manager is None else self.manager.gpus
        return len(gpus.host.gpus) if gpus is not None and gpus.config.enabled else 0

    def _free_gpus(self) -> int:
        gpus = None if self.manager is None else self.manager.gpus
        return gpus.free_count() if gpus is not None else 0

    async def _lost_here(self, job_id: str) -> None:
        """A placed job the cluster holds lost with this node: its end here
        is the cluster's (a copy still running is killed)."""
        assert self.manager is not None
        await self.manager.overrule_lost(job_id, NODE_LOST)

    def _restore(
        self,
        listeners: JobListeners,
        helpers: Helpers,
        loaded: Loaded,
        running: dict[str, int],
        orphaned: AbstractSet[str],
    ) -> None:
        """The jobs and workflows of the previous run. The workflows listen
        before the jobs are restored and are taken up right after, in the same
        turn: no workflow job's change falls between the two."""
        assert self.manager is not None and self.workflows is not None
        state = helpers.state
        listeners.add(self.workflows)
        launches_known = self._launcher is not None and self._launcher.launches_known
        self.manager.restore(loaded.jobs, running, orphaned, launches_known)
        flows, waiting = load_workflows(loaded.workflows)
        self.workflows.restore(flows)
        self.workflows.restore_waiting(waiting)
        self._start_retention(state, loaded, helpers.persist_config.retention.max_age_s)

    def _start_retention(self, state: StateClient, loaded: Loaded, history_age_s: float) -> None:
        """What earlier collections left (answers for collected ids), and the
        collector itself when joblet.jobRetention asks for one."""
        assert self.manager is not None
        collected = CollectedIds(history_age_s)
        batches = []
        for key, blob in loaded.records:
            if not key.startswith(COLLECTED_PREFIX):
                continue
            try:
                batches.append(decode_batch(key, blob))
            except CollectedRecordError as exc:
                log.warning("job retention: %s; dropped", exc)
                state.delete_record(key)
        collected.load(batches)
        self.manager.collected = collected
        policy = self.config.jobs.retention
        if not policy.enabled:
            return
        self.collector = Collector(self.manager, policy, collected, state, self.workflows)
        task = asyncio.create_task(self.collector.run(), name="job-retention")
        self._stack.push_async_callback(_end_task, task)
        log.info(
            "job retention: finished jobs kept %s, at most %s",
            f"{policy.max_age_s:g}s" if policy.max_age_s else "without an age limit",
            policy.max_jobs or "any number",
        )

    async def _open_runtimes(self) -> RuntimeStore:
        """The installed runtimes. A superseded build is deleted off the loop
        when its last job ends."""
        self._runtime_config = load_runtime_config(self.config_path)
        loop = asyncio.get_running_loop()

        def defer(work: Callable[[], None]) -> None:
            loop.call_soon_threadsafe(loop.run_in_executor, None, work)

        store = RuntimeStore(
            self.config.layout.runtimes, normalize_arch(os.uname().machine),
            has_gpu=_has_gpu, defer=defer,
        )  # fmt: skip
        await asyncio.to_thread(store.load)
        return store

    async def _start_launcher(self) -> LauncherLink:
        layout = self.config.layout
        launcher = LauncherLink(
            layout.launcher_socket, layout.run / "launcher",
            idle_exit_s=self.config.jobs.launcher_idle_exit_s,
            user_namespace=self.config.jobs.user_namespace,
        )  # fmt: skip
        self._stack.push_async_callback(launcher.close)
        await launcher.connect()
        self._launcher = launcher
        return launcher

    async def _serve(
        self, node_id: str, metrics: MetricsHub, state: StateConfig, gate: StartupGate
    ) -> None:
        assert self.manager is not None
        await self._join_cluster(state, node_id)
        config = self.config
        collector = HostCollector(node_id, detect_cloud(ask_metadata=config.metrics.cloud_metadata))
        interceptor = AuthInterceptor(
            receive_limits(config), RECEIVE_LIMIT,
            revoked=self._watch_revocations().revoked, auditor=self._audit_trail(),
        )  # fmt: skip
        server = grpc.aio.server(interceptors=[gate, interceptor], options=_grpc_options(config))
        assert self.workflows is not None
        store = self._runtimes
        rpc = WorkflowRpc(
            self.workflows, config, self._networks, self._volumes,
            runtimes=lambda: [record.spec.name for record in store.installed()],
        )  # fmt: skip
        others = (
            None if self._leases is None
            else ClusterJobs(self._leases, node_id, local=self.manager.find)
        )  # fmt: skip
        jobs = JobService(
            self.manager, config, metrics, self._networks, self._volumes,
            workflows=rpc, shell=self.workflows, cluster=others,
        )  # fmt: skip
        pb_grpc.add_JobServiceServicer_to_server(jobs, server)  # type: ignore[no-untyped-call]
        log_rpc.install_serialized_logs(server, jobs)
        manager = self.manager
        # Sends stored samples' bytes as they are (24 h = 17,280 samples).
        metrics_rpc.install_raw_history(server, manager.history_ref, metrics)
        if others is not None:
            router = self._forward_to_owners(server, jobs, others, node_id, metrics)
            if self._cluster.placement:
                assert self._leases is not None
                placer, tokens = await self._stack.enter_async_context(
                    placing(self._cluster, state, node_id, leases=self._leases, others=others,
                            free_slots=self.manager.free_slots, launch=jobs.launch_placed,
                            kill=self._fence_kill, lost=self._lost_here,
                            fence_launcher=self._fence_launcher,
                            settle=self._end_earlier_run,
                            gpus=self._gpu_count(), free_gpus=self._free_gpus,
                            local=(self.manager.find, self.manager.snapshot))
                )  # fmt: skip
                assert self._listeners is not None
                self._listeners.add(tokens)
                # Placed jobs no node took yet: listed, and canceled, from any node.
                jobs.placer = placer
                router.queue = placer.queue
                others.placed = PlacedView(placer.queue, os.cpu_count() or 1)
        if config.metrics.prometheus.enabled:
            await self._stack.enter_async_context(
                PrometheusExporter(metrics, collector, config.metrics.prometheus,
                                   job_name=lambda job_id: manager.get(job_id).spec.name)
            )  # fmt: skip
        pb_grpc.add_VolumeServiceServicer_to_server(  # type: ignore[no-untyped-call]
            VolumeService(self._volumes), server
        )
        pb_grpc.add_NetworkServiceServicer_to_server(  # type: ignore[no-untyped-call]
            NetworkService(self._networks, self._network_users), server
        )
        pb_grpc.add_MonitoringServiceServicer_to_server(  # type: ignore[no-untyped-call]
            MonitoringService(collector), server
        )
        installer = Installer(
            self._runtimes, self.manager, self._runtime_config, config.jobs.max_upload_bytes
        )
        self._stack.push_async_callback(installer.close)
        pb_grpc.add_RuntimeServiceServicer_to_server(  # type: ignore[no-untyped-call]
            RuntimeService(self._runtimes, installer), server
        )
        pb_grpc.add_ClusterServiceServicer_to_server(  # type: ignore[no-untyped-call]
            ClusterService(self._cluster_name, node_id, self._leases), server
        )
        if manager.gpus is not None:
            pb_grpc.add_GpuServiceServicer_to_server(  # type: ignore[no-untyped-call]
                GpuService(manager.gpus), server
            )
            if manager.gpus.metrics is not None:  # its XID thread ends with the daemon
                self._stack.callback(manager.gpus.metrics.close)
        from joblet.daemon.ui_service import UiService

        pb_grpc.add_UiServiceServicer_to_server(  # type: ignore[no-untyped-call]
            UiService(config.ui, config.layout.root), server
        )
        address = f"{config.server.address}:{config.server.port}"
        self.bound_port = server.add_secure_port(address, server_credentials(config.security))
        await server.start()
        self.server = server
        log.info(
            "joblet listening on %s:%d (node %s)", config.server.address, self.bound_port, node_id
        )

    def _watch_revocations(self) -> RevocationWatch:
        """The CRL under the root, checked now and then every second."""
        watch = RevocationWatch(self.config.layout.crl, self.config.security.ca_cert)
        watch.load()
        task = asyncio.create_task(watch.run(), name="watch-crl")
        self._stack.push_async_callback(_end_task, task)
        return watch

    def _audit_trail(self) -> AuditTrail | None:
        if not self.config.audit.enabled:
            return None
        trail = AuditTrail(self.config.layout.audit_log, self.config.audit)
        self._stack.callback(trail.close)
        return trail

    def _network_users(self, network: str) -> list[str]:
        """Jobs that use or will use `network` (running, queued, scheduled)."""
        assert self.manager is not None
        default = self.config.network.default_mode
        return [
            j.id
            for j in self.manager.list_jobs()
            if not j.status.is_final and (j.spec.network or default) == network
        ]

    def _volume_users(self, volume: str) -> list[str]:
        """Jobs that use or will use `volume` (running, queued, scheduled)."""
        assert self.manager is not None
        return [
            j.id
            for j in self.manager.list_jobs()
            if not j.status.is_final and volume in entry_names(j.spec.volumes)
        ]

    async def stop(self, *, stop_jobs: bool = True) -> None:
        """Stop serving; `stop_jobs`: stop the running jobs too, else leave
        them to the launcher for the next start."""
        if self.server is not None:
            await self.server.stop(SHUTDOWN_GRACE_S)
        if self.manager is not None:
            await self.manager.shutdown(stop_jobs=stop_jobs)
            if await self._leave_or_stop_launcher():
                problems = await asyncio.to_thread(
                    release_host, self._networks, self._cgroups, self._volumes,
                    self.config.layout.jobs,
                )  # fmt: skip
                problems += await asyncio.to_thread(_release_jobs_dir, self.config.layout)
                problems += await asyncio.to_thread(_close_workspaces, self.config.layout)
                for problem in problems:
                    log.warning("left behind: %s", problem)
        await self._stack.aclose()

    async def _leave_or_stop_launcher(self) -> bool:
        """With jobs running, leave them to the launcher; else ask it to exit.
        Whether it is gone (then nothing of this daemon needs the kernel's
        objects any more)."""
        launcher = self._launcher
        if launcher is None:
            return False
        try:
            running = await launcher.running()
            if running:
                kept = await launcher.detach()
                log.info(
                    "left %d running job(s) to the launcher (pid %d): %s; "
                    "the next start re-attaches them",
                    len(kept), launcher.pid, ", ".join(kept),
                )  # fmt: skip
                return False
            await launcher.exit()
        except JobletError as exc:
            log.warning("launcher: %s", exc)
            return False
        if not await launcher.wait_exited(LAUNCHER_EXIT_S):
            log.warning("the launcher (pid %d) did not exit", launcher.pid)
            return False
        log.info("the launcher exited")
        return True

    async def run_until_signal(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        clear_request(self.config.layout)
        await self.start()
        await stop.wait()
        asked = take_request(self.config.layout)
        stop_jobs = self.config.jobs.stop_jobs_on_shutdown if asked is None else asked
        log.info(
            "shutting down: %s",
            "stopping the running jobs" if stop_jobs else "leaving running jobs to the launcher",
        )
        with contextlib.suppress(asyncio.CancelledError):
            await self.stop(stop_jobs=stop_jobs)


async def _end_task(task: asyncio.Task[Any]) -> None:
    """Cancel `task` unless it is done; a failure nobody awaited is logged once."""
    task.cancel()  # a no-op once it is done
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        log.debug("%s ended with %r", task.get_name(), task.exception())


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("joblet")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def open_node_gpus(config: DaemonConfig, cgroups: CgroupManager) -> GpuAllocator:
    """The GPUs, with the device filter the job cgroups can apply (and why none can)."""
    problem = getattr(cgroups, "device_filter_reason", "")
    return open_gpus(config.gpu, cgroups.device_filter, problem)


def _has_gpu() -> bool:
    """Whether an NVIDIA device is present (what `requirements.gpu` asks for)."""
    return Path("/dev/nvidiactl").exists()
