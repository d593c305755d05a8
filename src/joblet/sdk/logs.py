"""Stream-tagged output: the node serves each stream on its own, so the two
are read side by side and merged in arrival order (each stream keeps its own
order; between them, order is as the chunks arrived)."""

from __future__ import annotations

import codecs
from collections.abc import Iterator

from joblet.sdk.models import LogChunk

STREAMS = ("stdout", "stderr")


class TextDecoder:
    """Bytes of one stream to str, a multi-byte character split across
    chunks included; undecodable bytes become U+FFFD."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes, final: bool = False) -> str:
        return self._decoder.decode(data, final)


def tagged(stream: str, payloads: Iterator[bytes], text: bool) -> Iterator[LogChunk]:
    decoder = TextDecoder() if text else None
    for payload in payloads:
        if decoder is None:
            yield LogChunk(stream, payload)
        elif piece := decoder.feed(payload):
            yield LogChunk(stream, piece)
    if decoder is not None and (rest := decoder.feed(b"", final=True)):
        yield LogChunk(stream, rest)
