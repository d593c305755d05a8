from __future__ import annotations

import pytest

from joblet.security.roles import Caller, Role, caller_from_subject, parse_subject


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("CN=viewer,OU=viewer,O=joblet", [("CN", "viewer"), ("OU", "viewer"), ("O", "joblet")]),
        (r"CN=a\,b,OU=admin", [("CN", "a,b"), ("OU", "admin")]),
        (r"CN=caf\C3\A9,OU=admin", [("CN", "café"), ("OU", "admin")]),
        ("CN=x+OU=admin", [("CN", "x"), ("OU", "admin")]),
        (r"CN=a\=b\\c", [("CN", "a=b\\c")]),
    ],
)
def test_parse_subject(text: str, pairs: list[tuple[str, str]]) -> None:
    assert parse_subject(text) == pairs


@pytest.mark.parametrize(
    ("text", "caller"),
    [
        ("CN=alice,OU=admin,O=joblet", Caller("alice", Role.ADMIN)),
        ("CN=bob,OU=viewer", Caller("bob", Role.VIEWER)),
        ("CN=eve,OU=root", None),
        ("CN=eve", None),
        ("CN=eve,OU=admin,OU=viewer", None),
        (r"CN=eve,OU=admin\,x", None),
        ("garbage", None),
        ("", None),
    ],
)
def test_caller_from_subject(text: str, caller: Caller | None) -> None:
    assert caller_from_subject(text) == caller
