"""Running the handlers of one `select` batch without acting on stale events.

A handler may close another fd whose event is in the same batch (a job that
finishes closes both of its output pipes from the first pipe's handler), or
change its registration; a new pipe may even reuse the fd number at once.
The event read before that belongs to what the fd was: its handler must not
run. Selectors are level-triggered, so an event skipped here on an fd still
registered comes back at the next `select`.
"""

from __future__ import annotations

import selectors
from collections.abc import Callable, Iterable

Handler = Callable[[], None]


def run_ready(
    sel: selectors.BaseSelector, events: Iterable[tuple[selectors.SelectorKey, int]]
) -> None:
    """Call each event's handler (its key's data) if the key is still the one
    registered for its fd."""
    for key, _ in events:
        if _current(sel, key):
            handler: Handler = key.data
            handler()


def _current(sel: selectors.BaseSelector, key: selectors.SelectorKey) -> bool:
    try:
        return sel.get_key(key.fd) is key
    except KeyError:  # unregistered since the batch was read
        return False
