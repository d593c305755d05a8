"""Keeping what the daemon sends from driving the user's terminal.

Job names, arguments, messages and log output come from whoever ran the job.
Printed raw, an ESC or a C1 control in them is a command to the terminal:
clear the screen, rewrite the title, set the clipboard (OSC 52), or hide text
behind a colour. Fields are shown with every control character escaped
(`\\x1b`, `\\u009b`); log output keeps its colours (SGR: `ESC [ ... m`) and
line structure, every other control is escaped. Pure functions and one
stateful filter; no I/O.
"""

from __future__ import annotations

import codecs
import re

# C0, DEL and C1 (U+0080..U+009F: 8-bit CSI, OSC... as code points).
_FIELD_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_TEXT_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # newline kept
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Log output: an SGR sequence passes, any other control is escaped. Bytes that
# are not UTF-8 arrive as lone surrogates (surrogateescape); the ones in
# 0x80..0x9f are C1 controls to a terminal in an 8-bit mode.
_SGR = "\x1b\\[[0-9;:]*m"
_LOG_CONTROLS = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\udc80-\udc9f]"
_LOG_PATTERN = re.compile(f"({_SGR})|{_LOG_CONTROLS}")
# What may still become an SGR sequence once the next chunk arrives.
_SGR_PREFIX = re.compile("\x1b(?:\\[[0-9;:]{0,64})?\\Z")


def _escape_one(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, shown as that byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def escape_field(text: str) -> str:
    """`text` with every control character (newline included) made visible."""
    return _FIELD_CONTROLS.sub(lambda m: _escape_one(m.group()), text)


def escape_text(text: str) -> str:
    """Multi-line `text` with every control character but newline made visible."""
    return _TEXT_CONTROLS.sub(lambda m: _escape_one(m.group()), text)


def _keep_sgr(match: re.Match[str]) -> str:
    sgr = match.group(1)
    return sgr if sgr is not None else _escape_one(match.group())


def neutralize_log_text(text: str) -> str:
    """Log text for a terminal: SGR colours, newline, CR and tab kept, every
    other control (and so every other escape sequence) made visible."""
    return _LOG_PATTERN.sub(_keep_sgr, text)


class LogFilter:
    """`neutralize_log_text` over a byte stream cut anywhere: a UTF-8
    character or an SGR sequence split between chunks is held back until the
    rest arrives."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self._pending = ""

    def feed(self, data: bytes | memoryview) -> bytes:
        text = self._pending + self._decoder.decode(data)
        held = _SGR_PREFIX.search(text)
        cut = held.start() if held is not None else len(text)
        self._pending = text[cut:]
        return _encode(neutralize_log_text(text[:cut]))

    def finish(self) -> bytes:
        """What is still held, once the stream has ended."""
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return _encode(neutralize_log_text(text))


def _encode(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")
