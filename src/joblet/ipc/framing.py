"""Length-delimited protobuf over Unix sockets: a varint length, then the message.

The same framing protobuf's own `writeDelimitedTo` uses, so any protobuf
library can speak to the helpers.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

MAX_FRAME = 64 * 1024 * 1024


class FrameError(Exception):
    """The peer sent something that is not a valid frame."""


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes | bytearray | memoryview, pos: int, end: int = -1) -> tuple[int, int]:
    """The varint at `pos` (reading no further than `end`, default the end of
    `data`) and the offset after it; (-1, -1) when the data ends inside it."""
    end = len(data) if end < 0 else end
    value = shift = 0
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise FrameError("varint is too long (over ten bytes)")
    return -1, -1


def encode_frame(message: Message) -> bytes:
    body = message.SerializeToString()
    return encode_varint(len(body)) + body


def split_frames(data: bytes | bytearray) -> tuple[list[bytes], int]:
    """The bodies of the complete frames at the start of `data`, and how many
    bytes they take: a reader that receives many frames at once (a listing)
    parses them from one buffer instead of awaiting each length and body."""
    bodies: list[bytes] = []
    offset = 0
    while True:
        length, shift, index = 0, 0, offset
        while index < len(data) and index - offset < 10:
            byte = data[index]
            index += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
        else:
            if index - offset >= 10:
                raise FrameError("frame length varint is too long")
            return bodies, offset  # the length itself is not complete yet
        if length > MAX_FRAME:
            raise FrameError(f"frame of {length} bytes exceeds the {MAX_FRAME} byte limit")
        if index + length > len(data):
            return bodies, offset
        bodies.append(bytes(data[index : index + length]))
        offset = index + length


async def read_varint(reader: asyncio.StreamReader) -> int | None:
    """The next varint, or None at a clean end of stream."""
    shift = 0
    value = 0
    for index in range(10):
        byte = await reader.read(1)
        if not byte:
            if index == 0:
                return None
            raise FrameError("stream ended inside a frame length")
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
    raise FrameError("frame length varint is too long")


async def read_frame(reader: asyncio.StreamReader, message_type: type[M]) -> M | None:
    """The next message, or None when the peer closed the stream cleanly."""
    length = await read_varint(reader)
    if length is None:
        return None
    if length > MAX_FRAME:
        raise FrameError(f"frame of {length} bytes exceeds the {MAX_FRAME} byte limit")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise FrameError("stream ended inside a frame") from exc
    message = message_type()
    message.ParseFromString(body)
    return message
