"""Job identifiers: new UUIDs, and resolving the unique prefixes users type."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from joblet.errors import InvalidArgument, NotFound

_PREFIX = re.compile(r"[0-9a-f-]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SHOWN_CANDIDATES = 5


def new_job_id() -> str:
    """A fresh random job id: a lower-case UUID4 string."""
    return str(uuid.uuid4())


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
