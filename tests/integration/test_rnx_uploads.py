"""Large uploads through `rnx run` against a real daemon: streamed, checked,
ignored by `.rnxignore`, refused over the node's limit before being read."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from .conftest import RunningDaemon

BIG = 40 * 1024 * 1024  # over rnx's 16 MiB streaming threshold


def _big_file(path: Path, size: int = BIG) -> str:
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        for _ in range(size >> 20):
            out.write(block)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_large_upload_is_streamed_and_arrives_whole(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    digest = _big_file(tmp_path / "big.bin")
    res = daemon.rnx("run", "-f", "--upload", str(tmp_path / "big.bin"), "sha256sum", "big.bin")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[0].decode() == digest
    assert not list((daemon.root / "uploads").iterdir())  # the staging is spent


def test_progress_bar_on_a_terminal(daemon: RunningDaemon, tmp_path: Path) -> None:
    _big_file(tmp_path / "big.bin")
    leader, follower = os.openpty()
    cmd = [sys.executable, "-m", "joblet.cli.main", "--config", str(daemon.rnx_config)]
    try:
        proc = subprocess.run(
            [*cmd, "run", "--upload", str(tmp_path / "big.bin"), "true"],
            stdout=subprocess.PIPE, stderr=follower, timeout=120, check=False,
        )  # fmt: skip
        os.close(follower)
        follower = -1
        seen = b""
        while chunk := _read(leader):
            seen += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert proc.returncode == 0
    assert b"40.0 MiB / 40.0 MiB" in seen and b"ETA" in seen and b"MiB/s" in seen, seen


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO once the other side is closed
        return b""


def test_rnxignore_and_symlinks_are_reported(daemon: RunningDaemon, tmp_path: Path) -> None:
    tree = tmp_path / "proj"
    (tree / "build").mkdir(parents=True)
    (tree / "build" / "out.o").write_text("x")
    (tree / "keep.py").write_text("print(1)")
    (tree / "debug.log").write_text("noise")
    (tree / "linked").symlink_to(tmp_path)
    (tree / ".rnxignore").write_text("build/\n*.log\n")
    res = daemon.rnx("run", "-f", "--upload-dir", str(tree), "find", "proj", "-type", "f")
    assert res.returncode == 0, res.stderr
    assert sorted(res.stdout.decode().split()) == ["proj/.rnxignore", "proj/keep.py"]
    assert b"warning: not uploading" in res.stderr and b"linked" in res.stderr


def test_over_the_limit_is_one_line_before_reading(daemon: RunningDaemon, tmp_path: Path) -> None:
    sparse = tmp_path / "huge.bin"
    with sparse.open("wb") as out:
        out.truncate(300 * 1024 * 1024)  # over the default 256MB, costs no disk
    started = time.monotonic()
    res = daemon.rnx("run", "--upload", str(sparse), "true")
    assert res.returncode != 0
    lines = res.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "joblet.maxUploadSize" in lines[0], lines
    assert time.monotonic() - started < 15  # refused at the declaration, not after sending
    assert not any((daemon.root / "uploads").iterdir())


def test_an_interrupted_upload_resumes_where_the_node_says(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    from joblet.api import joblet_pb2 as pb
    from joblet.client.connection import JobClient
    from joblet.client.upload_stream import chunks, open_session, where_to_resume
    from joblet.client.uploads import scan_uploads

    digest = _big_file(tmp_path / "big.bin", 3 << 20)
    entries = scan_uploads([str(tmp_path / "big.bin")], [])
    channel = daemon.channel()
    client = JobClient(channel, f"127.0.0.1:{daemon.port}")
    session = open_session(client, entries[0].size)
    # A first stream that broke after 1.5 MiB: no digest, the file incomplete.
    head = (tmp_path / "big.bin").read_bytes()[: 3 << 19]
    client.upload_files(
        iter([pb.UploadChunk(sessionId=session, path="big.bin", data=head[: 1 << 20]),
              pb.UploadChunk(sessionId=session, path="big.bin", offset=1 << 20,
                             data=head[1 << 20 :])])
    )  # fmt: skip
    held = where_to_resume(client, session)
    assert (held["big.bin"].size, held["big.bin"].complete) == (3 << 19, False)
    sent = list(chunks(session, entries, held))
    assert sent[1].offset == 3 << 19  # only the rest travels
    client.upload_files(iter(sent))
    job = client.run_job(
        pb.RunJobRequest(command="sha256sum", args=["big.bin"], uploadSession=session)
    )
    out = b"".join(client.get_job_output(job.jobUuid))
    channel.close()
    assert out.split()[0].decode() == digest
