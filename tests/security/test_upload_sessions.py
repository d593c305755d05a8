"""Hostile UploadFiles sessions against a real daemon: each is refused with
its own status, and nothing is ever written outside the staging directory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from integration.conftest import RunningDaemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .certmint import mint_client

pytestmark = pytest.mark.integration

LIMIT = 8_000_000


@pytest.fixture(scope="module")
def small_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    from integration.conftest import start_daemon

    running = start_daemon(tmp_path_factory.mktemp("uploads"), maxUploadSize="8MB")
    yield running
    running.stop()


def _stub(daemon: RunningDaemon, cert: str, key: str) -> pb_grpc.JobServiceStub:
    ca = (daemon.root / "config" / "ca-cert.pem").read_bytes()
    creds = grpc.ssl_channel_credentials(ca, key.encode(), cert.encode())
    return pb_grpc.JobServiceStub(grpc.secure_channel(f"127.0.0.1:{daemon.port}", creds))


def _admin(daemon: RunningDaemon, cn: str = "admin") -> pb_grpc.JobServiceStub:
    if cn == "admin":
        node = daemon.node()
        return _stub(daemon, node["cert"], node["key"])
    config = daemon.root / "config"
    cert, key = mint_client(
        (config / "ca-cert.pem").read_text(), (config / "ca-key.pem").read_text(), cn=cn
    )
    return _stub(daemon, cert, key)


def _open(stub: pb_grpc.JobServiceStub, total: int) -> str:
    return str(stub.UploadFiles(iter([pb.UploadChunk(totalSize=total)]), timeout=10).sessionId)


def _refused(stub: pb_grpc.JobServiceStub, *chunks: pb.UploadChunk) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stub.UploadFiles(iter(chunks), timeout=10)
    return caught.value


def _staged_files(daemon: RunningDaemon) -> set[Path]:
    return {p for p in (daemon.root / "uploads").rglob("*") if p.is_file()}


def _all_files(daemon: RunningDaemon) -> set[Path]:
    """Every file under the root but the daemon's own records (logs, state,
    metrics, run files), which change on their own."""
    own = [daemon.root / name for name in ("logs", "state", "metrics", "run")]
    return {
        p
        for p in daemon.root.rglob("*")
        if (p.is_file() or p.is_symlink()) and not any(p.is_relative_to(d) for d in own)
    }


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../escape", "'..' is not allowed"),
        ("a/../../escape", "'..' is not allowed"),
        ("/etc/escape", "must be relative"),
        ("nul\0byte", "NUL"),
        ("ctl\x1bname", "control character"),
        ("", "needs a path"),
    ],
)
def test_a_bad_path_is_refused(small_daemon: RunningDaemon, path: str, why: str) -> None:
    stub = _admin(small_daemon)
    before = _all_files(small_daemon)
    session = _open(stub, 100)
    error = _refused(stub, pb.UploadChunk(sessionId=session, path=path, data=b"x" * 10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert why in str(error.details())
    added = _all_files(small_daemon) - before
    assert not added, added
    assert not Path("/etc/escape").exists()
    audit = (small_daemon.root / "logs" / "audit.log").read_text()
    assert "UploadFiles" in audit


def test_offsets_must_follow_what_the_node_holds(small_daemon: RunningDaemon) -> None:
    stub = _admin(small_daemon)
    session = _open(stub, 100)
    stub.UploadFiles(iter([pb.UploadChunk(sessionId=session, path="f", data=b"a" * 10)]))
    for offset in (0, 5, 11, -1, 2**62):  # rewrite, overlap, gap, negative, far away
        error = _refused(
            stub, pb.UploadChunk(sessionId=session, path="f", offset=offset, data=b"b")
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
        assert "the node holds 10 bytes" in str(error.details())
    state = stub.UploadFiles(iter([pb.UploadChunk(sessionId=session)]))
    assert [(f.path, f.size, f.complete) for f in state.files] == [("f", 10, False)]
    staged = _staged_files(small_daemon)
    assert any(p.read_bytes() == b"a" * 10 for p in staged)


def test_a_sha256_mismatch_discards_the_file(small_daemon: RunningDaemon) -> None:
    stub = _admin(small_daemon)
    session = _open(stub, 100)
    wrong = hashlib.sha256(b"other").hexdigest()
    error = _refused(
        stub,
        pb.UploadChunk(sessionId=session, path="f", data=b"data"),
        pb.UploadChunk(sessionId=session, path="f", offset=4, sha256=wrong),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sha256 mismatch" in str(error.details())
    state = stub.UploadFiles(iter([pb.UploadChunk(sessionId=session)]))
    assert [(f.size, f.complete) for f in state.files] == [(0, False)]
    # A RunJob cannot use the incomplete session.
    with pytest.raises(grpc.RpcError) as caught:
        stub.RunJob(pb.RunJobRequest(command="true", uploadSession=session), timeout=10)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_another_clients_session_is_unknown(small_daemon: RunningDaemon) -> None:
    owner, other = _admin(small_daemon), _admin(small_daemon, cn="mallory")
    session = _open(owner, 100)
    for stub_call in (
        lambda: other.UploadFiles(iter([pb.UploadChunk(sessionId=session)]), timeout=10),
        lambda: other.UploadFiles(
            iter([pb.UploadChunk(sessionId=session, path="f", data=b"x")]), timeout=10
        ),
        lambda: other.RunJob(pb.RunJobRequest(command="true", uploadSession=session), timeout=10),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            stub_call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # The owner's session is untouched.
    state = owner.UploadFiles(iter([pb.UploadChunk(sessionId=session)]))
    assert list(state.files) == []


def test_a_viewer_may_not_upload(small_daemon: RunningDaemon) -> None:
    node = small_daemon.node("viewer")
    viewer = _stub(small_daemon, node["cert"], node["key"])
    error = _refused(viewer, pb.UploadChunk(totalSize=10))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_oversize_is_refused(small_daemon: RunningDaemon) -> None:
    stub = _admin(small_daemon)
    declared = _refused(stub, pb.UploadChunk(totalSize=LIMIT + 1))
    assert declared.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "joblet.maxUploadSize" in str(declared.details())
    session = _open(stub, 10)  # more than declared
    beyond = _refused(stub, pb.UploadChunk(sessionId=session, path="f", data=b"x" * 11))
    assert beyond.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    big = _refused(  # one chunk over 1 MiB
        stub, pb.UploadChunk(sessionId=_open(stub, LIMIT), path="g", data=b"x" * (2 << 20))
    )
    assert big.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 1048576 bytes" in str(big.details())
    huge = _refused(  # one message over the method's receive limit
        stub, pb.UploadChunk(sessionId=_open(stub, LIMIT), path="h", data=b"x" * (5 << 20))
    )
    assert huge.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_session_serves_one_job_and_lands_in_its_workspace(
    small_daemon: RunningDaemon,
) -> None:
    stub = _admin(small_daemon)
    data = b"payload\n"
    session = _open(stub, len(data))
    stub.UploadFiles(
        iter(
            [
                pb.UploadChunk(sessionId=session, path="dir", isDirectory=True),
                pb.UploadChunk(sessionId=session, path="dir/f", data=data, mode=0o4755),
                pb.UploadChunk(
                    sessionId=session, path="dir/f", offset=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                ),
            ]
        )
    )  # fmt: skip
    job = stub.RunJob(pb.RunJobRequest(command="cat", args=["dir/f"], uploadSession=session))
    from integration.conftest import wait_status

    wait_status(stub, job.jobUuid, {"COMPLETED"})
    placed = small_daemon.workspace(job.jobUuid) / "dir" / "f"
    assert placed.read_bytes() == data
    assert placed.stat().st_mode & 0o7777 == 0o755  # never setuid
    assert not (small_daemon.root / "uploads" / session).exists()
    again = stub.RunJob.with_call  # the session is spent
    with pytest.raises(grpc.RpcError) as caught:
        again(pb.RunJobRequest(command="true", uploadSession=session), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
