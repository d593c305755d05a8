"""Property-based fuzzing of every RPC of every public service against one real
daemon: messages built from the descriptors (proto_strategies) and raw bytes,
as admin and as viewer. Every refusal must carry a clear status (never
INTERNAL or UNKNOWN), the daemon keeps serving, and its memory stays bounded.

Valid requests really act: RunJob gets only harmless commands, and whatever
the run made (jobs, networks, volumes) is removed at the end. JOBLET_FUZZ_LONG=1
runs many more examples."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from integration.conftest import RunningDaemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .proto_strategies import messages, mutations

pytestmark = pytest.mark.integration

LONG = os.environ.get("JOBLET_FUZZ_LONG") == "1"
FUZZ = settings(
    max_examples=400 if LONG else 20,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
METHODS = [
    method for service in pb.DESCRIPTOR.services_by_name.values() for method in service.methods
]
# What a job may run: nothing else reaches the host's launcher from here.
HARMLESS_COMMANDS = ("true", "echo")
OVERRIDES = {
    "RunJobRequest.command": st.sampled_from(HARMLESS_COMMANDS),
    # Volumes are real files and loop devices: keep a fuzzed size small.
    "CreateVolumeReq.size": st.sampled_from(("", "1MB", "4MB", "0", "-1MB", "1EB", "x", "\x00")),
}


# Requests that get past validation, by request type; "{job}" is a job the
# fixture made. Fuzzing one field of these reaches what lies behind the checks.
def _bases(job_id: str) -> dict[str, Message]:
    by_uuid = {
        name: getattr(pb, name)(uuid=job_id)
        for name in (
            "GetJobStatusReq", "StopJobReq", "CancelJobReq", "DeleteJobReq", "JobMetricsRequest",
            "JobMetricsHistoryRequest", "JobMetricsSummaryRequest",
        )
    }  # fmt: skip
    return {
        **by_uuid,
        "RunJobRequest": pb.RunJobRequest(command="echo", args=["fuzz"], schedule="1h"),
        "GetJobLogsReq": pb.GetJobLogsReq(uuid=job_id, noFollow=True),
        "CreateNetworkReq": pb.CreateNetworkReq(name="fuzz", cidr="10.99.0.0/24"),
        "RemoveNetworkReq": pb.RemoveNetworkReq(name="fuzz"),
        "CreateVolumeReq": pb.CreateVolumeReq(name="fuzz", size="2MiB", type="memory"),
        "RemoveVolumeReq": pb.RemoveVolumeReq(name="fuzz"),
        "StreamMetricsReq": pb.StreamMetricsReq(intervalSeconds=1),
    }


# Streams are read this long at most (a live log or metrics never ends).
STREAM_SECONDS = 1.0
UNARY_SECONDS = 60.0
UNCLEAR = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
RSS_SLACK_KB = 50 * 1024


def _raw(data: bytes) -> bytes:
    return data


@dataclass
class FuzzTarget:
    daemon: RunningDaemon
    channels: dict[str, grpc.Channel]
    job_id: str = ""  # a scheduled job of the fixture's, for requests naming one
    warm_rss_kb: int = 0
    log_offset: int = 0
    answers: Counter[tuple[str, grpc.StatusCode]] = field(default_factory=Counter)

    def rss_kb(self) -> int:
        # `nsenter` without --fork execs the daemon: the child's pid is the daemon's.
        status = Path(f"/proc/{self.daemon.proc.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1])

    def call(self, method: MethodDescriptor, body: bytes, node: str) -> grpc.StatusCode:
        """The status `method` answers `body` with (OK, or the refusal's code)."""
        path = f"/{method.containing_service.full_name}/{method.name}"
        channel = self.channels[node]
        try:
            if method.server_streaming:
                stream = channel.unary_stream(path, _raw, _raw)(body, timeout=STREAM_SECONDS)
                for _ in stream:
                    stream.cancel()  # one message is an answer: the stream works
                    break
            else:
                channel.unary_unary(path, _raw, _raw)(body, timeout=UNARY_SECONDS)
        except grpc.RpcError as exc:
            assert isinstance(exc, grpc.Call)
            code = exc.code()
            assert code not in UNCLEAR, (path, node, body[:200], code, exc.details())
            if not method.server_streaming:
                assert code is not grpc.StatusCode.DEADLINE_EXCEEDED, (path, body[:200])
            self.answers[method.name, code] += 1
            return code
        self.answers[method.name, grpc.StatusCode.OK] += 1
        return grpc.StatusCode.OK


def _clean_up(daemon: RunningDaemon) -> None:
    """Remove every job, custom network and volume the fuzzing made."""
    jobs, networks, volumes = daemon.jobs(), daemon.channel(), daemon.channel()

    for job in jobs.ListJobs(pb.EmptyRequest(), timeout=60).jobs:
        if job.status == "SCHEDULED":
            jobs.CancelJob(pb.CancelJobReq(uuid=job.uuid), timeout=60)
        elif job.status in ("RUNNING", "QUEUED", "INITIALIZING"):
            try:
                jobs.StopJob(pb.StopJobReq(uuid=job.uuid), timeout=60)
            except grpc.RpcError as exc:
                assert exc.code() is grpc.StatusCode.FAILED_PRECONDITION  # ended meanwhile
    deadline = time.monotonic() + 60
    while jobs.ListJobs(pb.EmptyRequest(), timeout=60).jobs:
        jobs.DeleteAllJobs(pb.DeleteAllJobsReq(), timeout=60)
        assert time.monotonic() < deadline, "jobs left after the fuzzing"
        time.sleep(0.1)
    network_stub = pb_grpc.NetworkServiceStub(networks)
    for network in network_stub.ListNetworks(pb.EmptyRequest(), timeout=60).networks:
        if network.name not in ("bridge", "isolated", "none", "host"):
            network_stub.RemoveNetwork(pb.RemoveNetworkReq(name=network.name), timeout=60)
    volume_stub = pb_grpc.VolumeServiceStub(volumes)
    for volume in volume_stub.ListVolumes(pb.EmptyRequest(), timeout=60).volumes:
        volume_stub.RemoveVolume(pb.RemoveVolumeReq(name=volume.name), timeout=60)


@pytest.fixture(scope="module")
def target(daemon: RunningDaemon) -> Iterator[FuzzTarget]:
    channels = {"default": daemon.channel(), "viewer": daemon.channel("viewer")}
    fuzz = FuzzTarget(daemon, channels)
    request = pb.RunJobRequest(command="true", schedule="1h", name="fuzz-target")
    fuzz.job_id = daemon.jobs().RunJob(request, timeout=60).jobUuid
    for method in METHODS:  # warm-up: every code path's imports and caches
        fuzz.call(method, b"", "default")
    fuzz.warm_rss_kb = fuzz.rss_kb()
    fuzz.log_offset = daemon.log_path.stat().st_size
    yield fuzz
    try:
        _clean_up(daemon)
    finally:
        for channel in channels.values():
            channel.close()


def _harmless(method: MethodDescriptor, body: bytes) -> bool:
    """Whether raw bytes, should they parse, ask for nothing but a harmless job."""
    if method.name != "RunJob":
        return True
    try:
        request = pb.RunJobRequest.FromString(body)
    except DecodeError:
        return True
    return request.command in HARMLESS_COMMANDS or not request.command


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_fuzzed_messages_get_a_clear_answer(target: FuzzTarget, method: MethodDescriptor) -> None:
    anything = messages(method.input_type, OVERRIDES)
    base = _bases(target.job_id).get(method.input_type.name)
    strategy = anything if base is None else st.one_of(anything, mutations(base, OVERRIDES))

    @FUZZ
    @given(message=strategy, viewer=st.booleans())
    def check(message: object, viewer: bool) -> None:
        assert hasattr(message, "SerializeToString")
        target.call(method, message.SerializeToString(), "viewer" if viewer else "default")

    check()


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_raw_bodies_get_a_clear_answer(target: FuzzTarget, method: MethodDescriptor) -> None:
    @FUZZ
    @given(body=st.binary(max_size=512), viewer=st.booleans())
    def check(body: bytes, viewer: bool) -> None:
        if _harmless(method, body):
            target.call(method, body, "viewer" if viewer else "default")

    check()


def test_the_daemon_survives_with_bounded_memory(target: FuzzTarget) -> None:
    daemon = target.daemon
    stub = daemon.jobs()
    job = stub.RunJob(pb.RunJobRequest(command="true"), timeout=60)
    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=job.jobUuid), timeout=60).uuid == job.jobUuid
    rss = target.rss_kb()
    assert rss < 2 * target.warm_rss_kb + RSS_SLACK_KB, (rss, target.warm_rss_kb)
    # The strategies reach past validation: some fuzzed jobs really ran.
    assert target.answers["RunJob", grpc.StatusCode.OK] > 0, target.answers
    added = daemon.log_path.read_bytes()[target.log_offset :].decode(errors="replace")
    assert "Traceback" not in added, added[-20000:]
