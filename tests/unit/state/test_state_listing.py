"""Loading every job at a daemon start: the frames of a listing parsed in bulk,
and a large listing through a real helper socket."""

from __future__ import annotations

from pathlib import Path

import pytest

from joblet.ipc.framing import MAX_FRAME, FrameError, encode_varint, split_frames
from joblet.jobs.model import Job, JobSpec, JobStatus
from joblet.jobs.serialization import job_to_json
from joblet.state.client import StateClient, list_records
from joblet.state.retry import WritePolicy
from joblet.state.service import StateService
from joblet.testing.state import MemoryBackend

FRAMES = [b"", b"x", b"a" * 127, b"b" * 128, b"c" * 300, b"d" * 70_000]
STREAM = b"".join(encode_varint(len(f)) + f for f in FRAMES)
# Cuts inside the small frames' lengths and bodies, then a few in the large one.
CUTS = sorted({*range(0, 600, 7), *range(600, len(STREAM), 9973), len(STREAM)})


@pytest.mark.parametrize("cut", CUTS)
def test_split_frames_keeps_an_incomplete_tail_for_later(cut: int) -> None:
    head, used = split_frames(STREAM[:cut])
    assert STREAM[:used] == b"".join(encode_varint(len(f)) + f for f in head)
    rest, rest_used = split_frames(STREAM[used:])
    assert (head + rest, used + rest_used) == (FRAMES, len(STREAM))


def test_split_frames_rejects_bad_lengths() -> None:
    with pytest.raises(FrameError, match="too long"):
        split_frames(b"\xff" * 10 + b"\x01")
    with pytest.raises(FrameError, match="exceeds"):
        split_frames(encode_varint(MAX_FRAME + 1))
    assert split_frames(b"\x80") == ([], 0)  # a length still arriving


async def test_a_large_listing_arrives_whole_and_in_order(tmp_path: Path) -> None:
    backend = MemoryBackend()
    ids = [f"job-{i:05d}" for i in range(3000)]
    for i, job_id in enumerate(ids):
        job = Job(
            id=job_id, spec=JobSpec(command="true"), status=JobStatus.COMPLETED, exit_code=i % 7
        )
        await backend.put(job_id, job_to_json(job))
    sock = tmp_path / "state.sock"
    policy = WritePolicy(timeout_s=5, retries=1)
    async with StateService(backend, sock, policy):
        records = await list_records(sock)
        client = await StateClient.connect(sock)
        jobs = await client.load_all(timeout=10)
        await client.close()
    assert [job_id for job_id, _ in records] == ids
    assert [(j.id, j.exit_code) for j in jobs] == [(i, n % 7) for n, i in enumerate(ids)]


async def test_decoding_a_large_listing_lets_the_loop_run_in_between() -> None:
    """A start decodes every record while it brings up the launcher and the
    port: the decode yields to the loop every DECODE_BATCH records."""
    import asyncio

    from joblet.state import client

    records = [
        (f"job-{i}", job_to_json(Job(id=f"job-{i}", spec=JobSpec(command="true"),
                                     status=JobStatus.COMPLETED)))
        for i in range(3 * client.DECODE_BATCH)
    ]  # fmt: skip
    turns = 0
    decoding = asyncio.create_task(client._decode_records(records))
    while not decoding.done():
        turns += 1
        await asyncio.sleep(0)
    jobs = await decoding
    assert [job.id for job in jobs] == [r[0] for r in records]
    assert turns >= 3  # one long decode would have left a single turn
