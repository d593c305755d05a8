"""Parsers for the human units used in config and on the command line."""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "K": 1000,
    "KB": 1000,
    "M": 1000**2,
    "MB": 1000**2,
    "G": 1000**3,
    "GB": 1000**3,
    "T": 1000**4,
    "TB": 1000**4,
    "KI": 1024,
    "KIB": 1024,
    "MI": 1024**2,
    "MIB": 1024**2,
    "GI": 1024**3,
    "GIB": 1024**3,
    "TI": 1024**4,
    "TIB": 1024**4,
}


def parse_duration_s(value: str | float | int) -> float:
    """'90' or 90 (seconds), '30s', '5m', '1h30m', '250ms' -> seconds."""
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration {value} must not be negative")
        return float(value)
    text = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 5m, 1h30m)")
    return total


def parse_size_bytes(value: str | int) -> int:
    """'512MB' (10^6), '1GiB' (2^20), '100' (bytes) -> bytes."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size {value} must not be negative")
        return value
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"invalid size {value!r} (use e.g. 512MB, 1GiB)")
    unit = (match.group(2) or "").upper()
    return int(float(match.group(1)) * _SIZE_UNITS[unit])
