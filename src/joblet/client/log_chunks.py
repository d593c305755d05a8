"""The output inside a serialized DataChunk, without parsing the message.

`rnx job log` only writes each chunk's output, so it reads the payload field
in place: parsing into a `pb.DataChunk` and reading `.payload` would copy
every byte twice more. Anything but the one field our daemon sends (a
message from another server, with extra fields) goes through the parser.
"""

from __future__ import annotations

from joblet.api import joblet_pb2 as pb
from joblet.ipc.framing import decode_varint

_PAYLOAD = 1 << 3 | 2  # field 1, length-delimited


def data_chunk_payload(message: bytes) -> bytes | memoryview:
    """DataChunk.FromString(message).payload, as a view where it can be."""
    if not message:
        return b""
    if message[0] == _PAYLOAD:
        length, start = decode_varint(message, 1)
        if length >= 0 and start + length == len(message):
            return memoryview(message)[start:]
    return pb.DataChunk.FromString(message).payload
