"""Sessions (server-side, expiring, revocable) and the request checks."""

from __future__ import annotations

import pytest

from joblet.ui import guard
from joblet.ui.config import UiConfig
from joblet.ui.sessions import SessionStore


def test_sessions_expire_and_can_be_revoked() -> None:
    store = SessionStore(ttl_s=100)
    one = store.open("admin", "alice", now=0)
    two = store.open("viewer", "alice", now=0)
    assert store.get(one.sid, now=99) == one
    assert store.get(one.sid, now=100) is None
    assert store.revoke_cn("alice") == 1  # `one` had already expired
    assert store.get(two.sid, now=1) is None
    assert store.get(None, now=1) is None
    assert one.csrf != two.csrf and len(one.sid) >= 40


def test_a_session_starts_on_the_local_node_and_keeps_its_role_on_another() -> None:
    store = SessionStore(ttl_s=100)
    one = store.open("viewer", "bob", now=0)
    assert one.node == "local"
    moved = store.select_node(one.sid, "east")
    assert moved is not None
    assert (moved.node, moved.role, moved.csrf) == ("east", "viewer", one.csrf)
    assert store.get(one.sid, now=1) == moved
    assert store.select_node("nobody", "east") is None


ALLOWED = UiConfig().allowed_hosts()


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:5175", True),
        ("localhost:5175", True),
        ("LOCALHOST", True),
        ("[::1]:5175", True),
        ("evil.example:5175", False),  # DNS rebinding: the name is the attacker's
        ("127.0.0.1:80", False),
        ("127.0.0.1:5175@evil", False),
        ("", False),
        (None, False),
    ],
)
def test_host_names(host: str | None, ok: bool) -> None:
    assert guard.host_allowed(host, ALLOWED, 5175) is ok


def test_configured_names_are_allowed() -> None:
    config = UiConfig(host="10.0.0.5", tls=True, hosts=("jobs.example",))
    assert guard.host_allowed("jobs.example:5175", config.allowed_hosts(), 5175)
    assert not guard.host_allowed("localhost:5175", config.allowed_hosts(), 5175)


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("http://127.0.0.1:5175", True),
        ("https://127.0.0.1:5175", False),
        ("http://evil.example", False),
        ("null", False),
        (None, False),
    ],
)
def test_same_origin(origin: str | None, ok: bool) -> None:
    assert guard.same_origin(origin, "http", "127.0.0.1:5175") is ok


def test_csrf_token_must_match() -> None:
    assert guard.csrf_ok("abc", "abc")
    assert not guard.csrf_ok("abd", "abc")
    assert not guard.csrf_ok("", "abc")
    assert not guard.csrf_ok(None, "abc")
