"""Signal names as users type them: "INT", "SIGINT", "int" or "2"."""

from __future__ import annotations

import signal

from joblet.errors import InvalidArgument

MAX_GRACE_S = 24 * 3600  # a stop that waits longer is a mistake, not a plan


def parse_signal(text: str, default: int = signal.SIGTERM) -> int:
    """The signal number `text` names; `default` when it is empty."""
    text = text.strip()
    if not text:
        return default
    if text.isdigit():
        try:
            return int(signal.Signals(int(text)))
        except ValueError:
            raise InvalidArgument(f"signal {text!r}: no such signal number") from None
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    member = signal.Signals.__members__.get(name)
    if member is None:
        raise InvalidArgument(f"signal {text!r}: no such signal (try INT, TERM, KILL, HUP, USR1)")
    return int(member)


def check_grace(seconds: int) -> float | None:
    """A stop's grace period in seconds; None (the node's own) for 0."""
    if seconds < 0 or seconds > MAX_GRACE_S:
        raise InvalidArgument(f"grace period {seconds}s: use 0 to {MAX_GRACE_S} seconds")
    return float(seconds) if seconds else None
