"""An in-process JobService over an insecure local port, and a config naming it.

The fake runs nothing: a job's command picks a scripted outcome, so the CLI can
be driven end to end through `main(argv)` without a daemon.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.cli.main import main
from joblet.client.config import NodeConfig

START = "2024-05-01T10:00:00Z"
END = "2024-05-01T10:00:02.500000Z"


def _self_signed() -> tuple[str, str]:
    """A real certificate and its key: rnx reads a node's certificate before
    connecting, so the configs here hold a valid one (it is never presented:
    these tests connect without TLS, or to a closed port)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rnx-test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


CERT_PEM, KEY_PEM = _self_signed()


@dataclass
class FakeJob:
    request: pb.RunJobRequest
    uuid: str
    status: str = "RUNNING"
    exit_code: int = 0
    output: list[bytes] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)
    lagging_polls: int = 0  # GetJobStatus answers RUNNING this many more times


def _script(job: FakeJob) -> None:
    """Decide the job's outcome from its command, like a tiny shell would."""
    command, args = job.request.command, list(job.request.args)
    if command == "echo":
        job.output = [" ".join(args).encode() + b"\n"]
        job.status = "COMPLETED"
    elif command == "chunks":
        job.output = [a.encode() for a in args]
        job.status = "COMPLETED"
    elif command == "exit":
        job.exit_code = int(args[0])
        job.status = "COMPLETED" if job.exit_code == 0 else "FAILED"
    elif command == "killed":
        job.exit_code = 137
        job.status = "FAILED"
    elif command == "lagging":
        job.output = [b"done\n"]
        job.status, job.exit_code, job.lagging_polls = "FAILED", 4, 3
    if job.request.schedule:
        job.status = "SCHEDULED"
    if job.status != "RUNNING":
        job.ended.set()


class FakeJobService(pb_grpc.JobServiceServicer):
    def __init__(self) -> None:
        self.jobs: dict[str, FakeJob] = {}
        self.requests: list[pb.RunJobRequest] = []
        self.deny_delete_all = False
        self.omitted = 0  # ListJobs: finished jobs a capped reply left out

    def _find(self, ident: str, context: grpc.ServicerContext) -> FakeJob:
        matches = [j for u, j in self.jobs.items() if u.startswith(ident)]
        if len(matches) != 1:
            context.abort(grpc.StatusCode.NOT_FOUND, f"job {ident} not found")
        return matches[0]

    def RunJob(self, request: pb.RunJobRequest, context: grpc.ServicerContext) -> pb.RunJobResponse:
        self.requests.append(request)
        job = FakeJob(request, str(uuid.uuid4()))
        _script(job)
        self.jobs[job.uuid] = job
        return pb.RunJobResponse(
            jobUuid=job.uuid,
            status="SCHEDULED" if request.schedule else "RUNNING",
            command=request.command,
            args=request.args,
            maxCpu=request.maxCpu,
            maxMemory=request.maxMemory,
            startTime=START,
        )

    def GetJobStatus(
        self, request: pb.GetJobStatusReq, context: grpc.ServicerContext
    ) -> pb.GetJobStatusRes:
        job = self._find(request.uuid, context)
        status = job.status
        if job.lagging_polls:
            job.lagging_polls -= 1
            status = "RUNNING"
        final = status not in ("RUNNING", "SCHEDULED")
        return pb.GetJobStatusRes(
            uuid=job.uuid,
            name=job.request.name,
            command=job.request.command,
            args=job.request.args,
            maxCPU=job.request.maxCpu,
            maxMemory=job.request.maxMemory,
            status=status,
            startTime=START,
            endTime=END if final else "",
            exitCode=job.exit_code,
            environment=job.request.environment,
            secret_environment=dict.fromkeys(job.request.secret_environment, "***"),
            endReason=f"exit code {job.exit_code}" if final else "",
        )

    def GetJobLogs(
        self, request: pb.GetJobLogsReq, context: grpc.ServicerContext
    ) -> Iterator[pb.DataChunk]:
        job = self._find(request.uuid, context)
        for payload in job.output:
            yield pb.DataChunk(payload=payload)
        job.ended.wait(10)

    def ListJobs(self, request: pb.EmptyRequest, context: grpc.ServicerContext) -> pb.Jobs:
        if self.omitted:
            context.set_trailing_metadata((("joblet-omitted-finished-jobs", str(self.omitted)),))
        return pb.Jobs(
            jobs=[
                pb.Job(
                    uuid=j.uuid,
                    name=j.request.name,
                    command=j.request.command,
                    args=j.request.args,
                    status=j.status,
                    startTime=START,
                )
                for j in self.jobs.values()
            ]
        )

    def StopJob(self, request: pb.StopJobReq, context: grpc.ServicerContext) -> pb.StopJobRes:
        job = self._find(request.uuid, context)
        if job.status != "RUNNING":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"job {job.uuid} is not running")
        job.status, job.exit_code = "STOPPED", 143
        job.ended.set()
        return pb.StopJobRes(uuid=job.uuid, status="STOPPED", endTime=END, exitCode=143)

    def CancelJob(self, request: pb.CancelJobReq, context: grpc.ServicerContext) -> pb.CancelJobRes:
        job = self._find(request.uuid, context)
        job.status = "CANCELED"
        job.ended.set()
        return pb.CancelJobRes(uuid=job.uuid, status="CANCELED")

    def DeleteJob(self, request: pb.DeleteJobReq, context: grpc.ServicerContext) -> pb.DeleteJobRes:
        job = self._find(request.uuid, context)
        del self.jobs[job.uuid]
        return pb.DeleteJobRes(uuid=job.uuid, success=True, message=f"job {job.uuid} deleted")

    def DeleteAllJobs(
        self, request: pb.DeleteAllJobsReq, context: grpc.ServicerContext
    ) -> pb.DeleteAllJobsRes:
        if self.deny_delete_all:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "role viewer may not DeleteAllJobs")
        count = len(self.jobs)
        self.jobs.clear()
        return pb.DeleteAllJobsRes(success=True, message="deleted", deleted_count=count)


def write_config(path: Path, address: str, **extra: str) -> Path:
    node = {"address": address, "cert": CERT_PEM, "key": KEY_PEM, "ca": CERT_PEM, **extra}
    lines = ["nodes:", "  default:"]
    for key, value in node.items():
        lines.append(f"    {key}: |" if "\n" in value else f"    {key}: {value!r}")
        if "\n" in value:
            lines += [f"      {v}" for v in value.splitlines()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)  # it holds a key: readable by others, rnx warns
    return path


def insecure_channel(node: NodeConfig) -> grpc.Channel:
    return grpc.insecure_channel(node.address)


@dataclass
class Rnx:
    """Runs `rnx` in-process against the fake and captures what it printed."""

    config: Path
    service: FakeJobService
    capsys: pytest.CaptureFixture[str]
    factory: Callable[[NodeConfig], grpc.Channel] = insecure_channel

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = main(["--config", str(self.config), *argv], channel_factory=self.factory)
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def service() -> Iterator[tuple[FakeJobService, int]]:
    fake = FakeJobService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_JobServiceServicer_to_server(fake, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield fake, port
    server.stop(grace=None)


@pytest.fixture
def rnx(
    service: tuple[FakeJobService, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Rnx:
    fake, port = service
    config = write_config(tmp_path / "rnx-config.yml", f"127.0.0.1:{port}")
    return Rnx(config, fake, capsys)
