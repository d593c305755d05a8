from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError

from joblet.api import joblet_pb2 as pb
from joblet.client.log_chunks import data_chunk_payload
from joblet.daemon.log_rpc import data_chunk_head


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16_383, 16_384, 1 << 20])
def test_hand_built_chunks_are_what_protobuf_builds_and_reads(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    built = data_chunk_head(len(payload)) + payload
    assert built == pb.DataChunk(payload=payload).SerializeToString()
    assert bytes(data_chunk_payload(built)) == payload


def test_other_encodings_go_through_the_parser() -> None:
    payload = b"hello"
    unknown_field = pb.DataChunk(payload=payload).SerializeToString() + b"\x10\x01"
    twice = data_chunk_head(3) + b"old" + data_chunk_head(5) + payload  # the last one wins
    assert data_chunk_payload(unknown_field) == payload
    assert data_chunk_payload(twice) == payload
    with pytest.raises(DecodeError):
        data_chunk_payload(data_chunk_head(9) + payload)  # cut short
