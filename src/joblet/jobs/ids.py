"""Job identifiers: new UUIDs, and resolving what users type for one: an id,
a unique prefix of one, or a job's name."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from joblet.errors import InvalidArgument, NotFound

_PREFIX = re.compile(r"[0-9a-f-]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SHOWN_CANDIDATES = 5


_POOL_IDS = 256  # ids' worth of random bytes read at once (one getrandom)
_pool = bytearray()


def new_job_id() -> str:
    """A fresh random job id: a lower-case UUID4 string (what str(uuid.uuid4())
    gives, from os.urandom bytes read for many ids at a time: RunJob's path)."""
    global _pool
    if not _pool:
        _pool = bytearray(os.urandom(16 * _POOL_IDS))
    raw = _pool[-16:]
    del _pool[-16:]
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _forget_pool() -> None:
    _pool.clear()  # a forked child must not hand out its parent's next ids


os.register_at_fork(after_in_child=_forget_pool)


def is_job_id(text: str) -> bool:
    """Whether `text` is a full id in the canonical lower-case UUID form."""
    return _UUID.fullmatch(text) is not None


def check_prefix(prefix: str, kind: str = "job") -> str:
    """`prefix` lower-cased, or InvalidArgument when it cannot be part of an id."""
    lowered = prefix.strip().lower()
    if not lowered:
        raise InvalidArgument(f"a {kind} id (or a unique prefix of one) is required")
    if _PREFIX.fullmatch(lowered) is None:
        raise InvalidArgument(
            f"{kind} id {prefix!r} is not valid: use hex digits and '-' (a UUID or its prefix)"
        )
    return lowered


def resolve_prefix(prefix: str, ids: Iterable[str], kind: str = "job") -> str:
    """The one id in `ids` that equals or starts with `prefix`.

    An exact match wins over longer ids sharing the prefix. No match raises
    NotFound; several raise InvalidArgument naming (some of) the candidates."""
    wanted = check_prefix(prefix, kind)
    matches = sorted({job_id for job_id in ids if job_id.startswith(wanted)})
    if wanted in matches:
        return wanted
    if not matches:
        raise NotFound(f"{kind} {prefix} not found")
    if len(matches) > 1:
        raise InvalidArgument(
            f"{kind} id prefix {prefix!r} is ambiguous: it matches {_candidates(matches)};"
            " type more characters"
        )
    return matches[0]


def _candidates(matches: list[str]) -> str:
    shown = ", ".join(matches[:_SHOWN_CANDIDATES])
    rest = len(matches) - _SHOWN_CANDIDATES
    return f"{shown} and {rest} more" if rest > 0 else shown


def resolve_reference(text: str, names: Mapping[str, str]) -> str:
    """The id of the job `text` names, out of `names` (id -> job name).

    Like docker: a full id first, then a job's exact name when only one job
    has it, then a unique id prefix. A name several jobs share raises
    InvalidArgument listing their ids."""
    if text in names:
        return text
    named = sorted(job_id for job_id, name in names.items() if name and name == text)
    if len(named) == 1:
        return named[0]
    if named:
        raise InvalidArgument(
            f"job name {text!r} is ambiguous: jobs {_candidates(named)} have it; use an id"
        )
    if _PREFIX.fullmatch(text.strip().lower()) is None:
        if not text.strip():
            check_prefix(text)  # the "id required" message
        raise NotFound(f"job {text} not found (no job has that id or name)")
    return resolve_prefix(text, names)
