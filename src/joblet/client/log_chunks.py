"""The output inside a serialized DataChunk, without parsing the message.

`rnx job log` only writes each chunk's output, so it reads the payload field
in place: parsing into a `pb.DataChunk` and reading `.payload` would copy
every byte twice more. Anything but the one field our daemon sends (a
message from another server, with extra fields) goes through the parser.
"""

from __future__ import annotations

from joblet.api import joblet_pb2 as pb

_PAYLOAD = 1 << 3 | 2  # field 1, length-delimited


def data_chunk_payload(message: bytes) -> bytes | memoryview:
    """DataChunk.FromString(message).payload, as a view where it can be."""
    if not message:
        return b""
    if message[0] == _PAYLOAD:
        length, start = _varint(message, 1)
        if length >= 0 and start + length == len(message):
            return memoryview(message)[start:]
    return pb.DataChunk.FromString(message).payload


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the offset after it; -1 if it is cut short."""
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return -1, pos
