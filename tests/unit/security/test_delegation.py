"""Who a forwarded call comes from: a node peer names the caller it acts for;
anyone else's naming is ignored (pure: no gRPC)."""

from __future__ import annotations

import pytest

from joblet.security.roles import (
    FORWARDED_METHODS,
    ON_BEHALF_NAME_KEY,
    ON_BEHALF_ROLE_KEY,
    Caller,
    Role,
    delegated_caller,
    is_allowed,
)

STOP = "/joblet.JobService/StopJob"
LOGS = "/joblet.JobService/GetJobLogs"
NODE = Caller("node-b", Role.NODE)


def naming(role: str, name: str = "alice") -> list[tuple[str, str | bytes]]:
    return [(ON_BEHALF_ROLE_KEY, role), (ON_BEHALF_NAME_KEY, name.encode())]


@pytest.mark.parametrize("peer", [Caller("eve", Role.VIEWER), Caller("bob", Role.ADMIN)])
def test_a_client_naming_another_caller_stays_itself(peer: Caller) -> None:
    assert delegated_caller(peer, naming("admin", "root"), STOP) == peer


def test_a_node_acts_with_the_rights_of_whom_it_names() -> None:
    viewer = delegated_caller(NODE, naming("viewer"), LOGS)
    assert viewer == Caller("alice", Role.VIEWER, via="node-b")
    assert is_allowed(viewer.role, LOGS) and not is_allowed(viewer.role, STOP)
    assert delegated_caller(NODE, naming("admin"), STOP) == Caller("alice", Role.ADMIN, "node-b")


@pytest.mark.parametrize(
    "metadata",
    [
        [],
        naming("node"),  # a node cannot pass a node's rights on
        naming("root"),
        naming("admin", ""),
        [*naming("viewer"), (ON_BEHALF_ROLE_KEY, "admin")],  # two roles: ambiguous
    ],
)
def test_a_node_naming_no_valid_caller_is_refused(metadata: list[tuple[str, str | bytes]]) -> None:
    assert delegated_caller(NODE, metadata, STOP) is None


def test_a_node_may_only_forward_and_has_no_rights_of_its_own() -> None:
    assert delegated_caller(NODE, naming("admin"), "/joblet.JobService/RunJob") is None
    assert not any(is_allowed(Role.NODE, method) for method in FORWARDED_METHODS)
