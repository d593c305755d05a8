"""The launcher's event loop skips events made stale within their batch."""

from __future__ import annotations

import os
import selectors
from collections.abc import Iterator

import pytest

from joblet.isolation import dispatch


@pytest.fixture
def sel() -> Iterator[selectors.DefaultSelector]:
    selector = selectors.DefaultSelector()
    yield selector
    for fd in list(selector.get_map()):
        selector.unregister(fd)
        os.close(fd)
    selector.close()


def _ended_pipe() -> int:
    """A read end at end of file: always readable."""
    read_end, write_end = os.pipe()
    os.close(write_end)
    return read_end


def test_a_handler_closing_another_fd_of_the_batch_skips_its_event(
    sel: selectors.DefaultSelector,
) -> None:
    # As a job whose first pipe's end finishes the job and closes its second.
    first, second = _ended_pipe(), _ended_pipe()
    ran: list[str] = []

    def on_first() -> None:
        ran.append("first")
        for fd in (first, second):
            sel.unregister(fd)
            os.close(fd)

    def on_second() -> None:
        ran.append("second")
        raise AssertionError("the handler of a closed fd ran")

    sel.register(first, selectors.EVENT_READ, on_first)
    sel.register(second, selectors.EVENT_READ, on_second)
    events = sel.select(0)
    assert len(events) == 2
    # Whichever the kernel listed first, the other one's handler is stale.
    ordered = sorted(events, key=lambda event: event[0].fd != first)
    dispatch.run_ready(sel, ordered)
    assert ran == ["first"]


def test_a_reused_fd_number_does_not_reach_the_old_handler(
    sel: selectors.DefaultSelector,
) -> None:
    old = _ended_pipe()
    ran: list[str] = []
    reused: list[int] = []

    def closes_and_reopens() -> None:
        ran.append("closer")
        sel.unregister(old)
        os.close(old)
        fd = _ended_pipe()  # the lowest free number: the old one's
        reused.append(fd)
        sel.register(fd, selectors.EVENT_READ, lambda: ran.append("new"))

    closer = _ended_pipe()
    sel.register(closer, selectors.EVENT_READ, closes_and_reopens)
    sel.register(old, selectors.EVENT_READ, lambda: ran.append("old"))
    events = sorted(sel.select(0), key=lambda event: event[0].fd != closer)
    dispatch.run_ready(sel, events)
    assert reused == [old]
    assert ran == ["closer"]
    # Level-triggered: the new registration is served at the next select.
    sel.unregister(closer)
    os.close(closer)
    dispatch.run_ready(sel, sel.select(0))
    assert ran == ["closer", "new"]


def test_a_changed_handler_takes_effect_at_the_next_select(
    sel: selectors.DefaultSelector,
) -> None:
    a, b = _ended_pipe(), _ended_pipe()
    ran: list[str] = []

    def on_a() -> None:
        ran.append("a")
        sel.modify(b, selectors.EVENT_READ, lambda: ran.append("b2"))

    sel.register(a, selectors.EVENT_READ, on_a)
    sel.register(b, selectors.EVENT_READ, lambda: ran.append("b1"))
    dispatch.run_ready(sel, sorted(sel.select(0), key=lambda event: event[0].fd != a))
    assert ran == ["a"]
    sel.unregister(a)
    os.close(a)
    dispatch.run_ready(sel, sel.select(0))
    assert ran == ["a", "b2"]
