"""The launcher's book of spare inits: one per key, dropped when old or dead."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from joblet.isolation.child import JobOrder
from joblet.isolation.prepare import InitKey, ParentEnds
from joblet.isolation.spares import Init, Spares

KEY: InitKey = (1, ((), 1 << 20), False)
OTHER: InitKey = (2, ((), 1 << 20), False)


Make = Callable[..., tuple[Init, socket.socket]]


@pytest.fixture
def make() -> Iterator[Make]:
    """Inits over real pipes and sockets, all closed at the end."""
    sockets: list[socket.socket] = []
    fds: list[int] = []

    def init(pid: int, key: InitKey = KEY, age: float = 0.0) -> tuple[Init, socket.socket]:
        pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
        fds.extend(fd for pipe in pipes for fd in pipe)
        ctl, peer = socket.socketpair()
        sockets.extend((ctl, peer))
        ends = ParentEnds(*(r for r, _ in pipes))
        return Init(key, pid, ends, ctl, time.monotonic() - age), peer

    yield init
    for sock in sockets:
        sock.close()
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _closed(peer: socket.socket) -> bool:
    return peer.recv(1) == b""


def test_a_spare_is_taken_once_and_only_for_its_key(make: Make) -> None:
    spares = Spares()
    init, _ = make(100)
    spares.add(init)
    assert spares.take(OTHER) is None
    assert spares.take(KEY) is init
    assert spares.take(KEY) is None
    assert not spares.reaped(100, 0)  # now a job's pid: the launcher reaps it as one


def test_an_old_spare_is_dropped_not_used(make: Make) -> None:
    spares = Spares(max_age_s=1.0)
    init, peer = make(100, age=2.0)
    spares.add(init)
    assert spares.next_deadline() is not None
    assert spares.take(KEY) is None
    assert _closed(peer)  # the init reads end of file and exits
    assert spares.reaped(100, 0)  # and is reaped as a spare, not as a job


def test_expire_drops_old_spares_and_keeps_young_ones(make: Make) -> None:
    spares = Spares(max_age_s=1.0)
    old, old_peer = make(100, age=2.0)
    young, _ = make(101, key=OTHER)
    spares.add(old)
    spares.add(young)
    spares.expire()
    assert _closed(old_peer)
    assert spares.ready == {OTHER: young}


def test_a_spare_that_died_is_never_handed_out(make: Make) -> None:
    spares = Spares()
    init, peer = make(100)
    spares.add(init)
    assert spares.reaped(100, 9)
    assert _closed(peer)
    assert spares.take(KEY) is None


def test_a_new_spare_replaces_the_one_for_its_key(make: Make) -> None:
    spares = Spares()
    first, first_peer = make(100)
    second, _ = make(101)
    spares.add(first)
    spares.add(second)
    assert _closed(first_peer)
    assert spares.take(KEY) is second


def test_send_frames_the_order_and_closes_the_socket(make: Make) -> None:
    init, peer = make(100)
    order = JobOrder(
        "j", ((3, (b"etc/hosts", b"x"), False),), "h", ("true",), {}, "/work", (), 0, 0, {}
    )
    init.send(order)
    data = b""
    while chunk := peer.recv(65536):
        data += chunk
    assert JobOrder.decode(data[4:]) == order
    assert int.from_bytes(data[:4], "big") == len(data) - 4


def test_a_taken_spare_left_unused_is_reaped_as_a_spare(make: Make) -> None:
    spares = Spares()
    init, peer = make(100)
    spares.add(init)
    taken = spares.take(KEY)
    assert taken is init
    spares.drop(taken)
    assert _closed(peer)
    assert spares.reaped(100, 0)


def test_discard_all_lets_every_spare_go_and_waits_for_their_reaping(make: Make) -> None:
    spares = Spares()
    first, first_peer = make(101)
    other, other_peer = make(102, key=OTHER)
    spares.add(first)
    spares.add(other)
    spares.discard_all()
    assert spares.ready == {}
    assert _closed(first_peer) and _closed(other_peer)  # each init reads end of file
    assert spares.pending()
    assert spares.reaped(101, 0) and spares.reaped(102, 0)
    assert not spares.pending()
