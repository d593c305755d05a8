"""Owning a cgroup parent: the owner record, the decisions, and the lock in a temp dir."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.errors import InvalidArgument
from joblet.resources.owner import (
    OwnerRecord,
    lock_name,
    owns_leftovers,
    parse_owner_record,
    refusal,
    render_owner_record,
)
from joblet.resources.ownership import ParentOwnedError, claim_parent, forget_owner, read_owner

A = OwnerRecord("/opt/joblet", 4242, "joblet")


def test_record_round_trips() -> None:
    assert parse_owner_record(render_owner_record(A)) == A


@pytest.mark.parametrize(
    "text",
    [
        "",
        "version=1\nroot=/opt/joblet\n",  # torn: no pid
        "version=1\nroot=/opt/joblet\npid=abc\n",
        "version=1\nroot=/opt/joblet\npid=0\n",
        "version=1\nroot=relative\npid=5\n",
        "version=2\nroot=/opt/joblet\npid=5\n",
        "\x00\x01 garbage",
    ],
)
def test_what_is_not_a_record_is_none(text: str) -> None:
    assert parse_owner_record(text) is None


def test_record_keeps_spaces_and_equals_in_the_root() -> None:
    record = OwnerRecord("/srv/my root=x", 7, "a/b")
    assert parse_owner_record(render_owner_record(record)) == record


def test_lock_names_of_nested_parents_differ_from_flat_ones() -> None:
    assert lock_name("joblet") == "joblet"
    assert lock_name("/a/b/") == "a%b"
    assert lock_name("a/b") != lock_name("a_b")


def test_a_live_owner_of_another_root_is_named() -> None:
    reason = refusal("joblet", "/tmp/demo", A, owner_alive=True, foreign_groups=0)
    assert reason is not None
    assert "/opt/joblet" in reason and "pid 4242" in reason and "'joblet'" in reason
    assert "\n" not in reason


def test_a_live_owner_of_the_same_root_is_refused_too() -> None:
    reason = refusal("joblet", "/opt/joblet", A, owner_alive=True, foreign_groups=0)
    assert reason is not None and "already runs (pid 4242)" in reason


def test_a_live_owner_without_a_readable_record_is_still_refused() -> None:
    reason = refusal("joblet", "/tmp/demo", None, owner_alive=True, foreign_groups=0)
    assert reason is not None and "unreadable" in reason


def test_a_dead_owner_of_another_root_with_groups_left_keeps_the_parent() -> None:
    reason = refusal("joblet", "/tmp/demo", A, owner_alive=False, foreign_groups=2)
    assert reason is not None and "2 job group(s)" in reason and "/opt/joblet" in reason


@pytest.mark.parametrize(
    ("owner", "groups"),
    [(None, 0), (None, 3), (A, 0), (OwnerRecord("/tmp/demo", 1), 5)],
)
def test_a_free_parent_may_be_taken(owner: OwnerRecord | None, groups: int) -> None:
    assert refusal("joblet", "/tmp/demo", owner, owner_alive=False, foreign_groups=groups) is None


def test_leftovers_are_owned_only_when_the_record_names_this_root() -> None:
    assert owns_leftovers("/opt/joblet", A)
    assert not owns_leftovers("/tmp/demo", A)
    assert not owns_leftovers("/opt/joblet", None)


# ---- the lock, in a temp directory -----------------------------------------


def no_groups() -> list[str]:
    return []


def test_claim_writes_the_record_and_release_forgets_an_empty_parent(tmp_path: Path) -> None:
    claim = claim_parent("joblet", "/opt/joblet/", no_groups, tmp_path, wait_s=0)
    assert claim.previous is None and not claim.owns_leftovers()
    assert read_owner("joblet", tmp_path) == OwnerRecord("/opt/joblet", os.getpid(), "joblet")
    claim.release()
    assert list(tmp_path.iterdir()) == []
    claim.release()  # twice is harmless


def test_release_keeps_the_record_while_job_groups_remain(tmp_path: Path) -> None:
    claim = claim_parent("joblet", "/opt/joblet", lambda: ["j1"], tmp_path, wait_s=0)
    claim.release()
    again = claim_parent("joblet", "/opt/joblet", lambda: ["j1"], tmp_path, wait_s=0)
    assert again.previous is not None and again.owns_leftovers()
    again.release()


def test_a_held_parent_refuses_another_root(tmp_path: Path) -> None:
    first = claim_parent("joblet", "/opt/joblet", no_groups, tmp_path, wait_s=0)
    try:
        with pytest.raises(ParentOwnedError, match=f"/opt/joblet \\(pid {os.getpid()}\\)"):
            claim_parent("joblet", "/tmp/demo", no_groups, tmp_path, wait_s=0.1)
        # A parent of its own is fine.
        claim_parent("demo", "/tmp/demo", no_groups, tmp_path, wait_s=0).release()
    finally:
        first.release()


@contextlib.contextmanager
def holder(script: str, lock_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """A process running `script` (which claims a parent), once it says 'held'."""
    with subprocess.Popen(
        [sys.executable, "-c", script, str(lock_dir)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        yield child


def test_a_dead_owner_leaves_the_lock_free_for_its_root(tmp_path: Path) -> None:
    """The lock goes with the process, however it ends (here: SIGKILL)."""
    script = (
        "import sys, time; from pathlib import Path\n"
        "from joblet.resources.ownership import claim_parent\n"
        "claim_parent('joblet', '/opt/joblet', lambda: ['j1'], Path(sys.argv[1]), wait_s=0)\n"
        "print('held', flush=True); time.sleep(60)\n"
    )
    with holder(script, tmp_path) as child:
        try:
            with pytest.raises(ParentOwnedError, match="already runs"):
                claim_parent("joblet", "/opt/joblet", no_groups, tmp_path, wait_s=0)
        finally:
            child.kill()
    claim = claim_parent("joblet", "/opt/joblet", lambda: ["j1"], tmp_path, wait_s=0)
    assert claim.previous == OwnerRecord("/opt/joblet", child.pid, "joblet")
    assert claim.owns_leftovers()
    claim.release()


def test_a_dead_owner_of_another_root_with_groups_keeps_the_parent(tmp_path: Path) -> None:
    gone = claim_parent("joblet", "/opt/joblet", lambda: ["j1"], tmp_path, wait_s=0)
    gone.release()  # groups remain: the record stays
    with pytest.raises(ParentOwnedError, match="1 job group"):
        claim_parent("joblet", "/tmp/demo", lambda: ["j1"], tmp_path, wait_s=0)
    taken = claim_parent("joblet", "/tmp/demo", no_groups, tmp_path, wait_s=0)
    assert not taken.owns_leftovers()  # the record named /opt/joblet
    taken.release()


def test_a_waiting_claim_gets_the_parent_once_the_owner_releases(tmp_path: Path) -> None:
    script = (
        "import sys, time; from pathlib import Path\n"
        "from joblet.resources.ownership import claim_parent\n"
        "c = claim_parent('joblet', '/opt/joblet', lambda: [], Path(sys.argv[1]), wait_s=0)\n"
        "print('held', flush=True); time.sleep(0.3); c.release()\n"
    )
    with holder(script, tmp_path):
        started = time.monotonic()
        # The owner unlinks the lock file as it releases: the claim must end
        # up on the file the name gives, not on the unlinked one.
        claim = claim_parent("joblet", "/opt/joblet", no_groups, tmp_path, wait_s=30)
    assert time.monotonic() - started < 30
    lock = tmp_path / "joblet.lock"
    assert lock.exists()
    with pytest.raises(ParentOwnedError):
        claim_parent("joblet", "/tmp/demo", no_groups, tmp_path, wait_s=0)
    claim.release()


def test_a_bad_parent_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        claim_parent("../etc", "/opt/joblet", no_groups, tmp_path, wait_s=0)


def test_forget_owner_removes_what_a_dead_owner_left(tmp_path: Path) -> None:
    claim_parent("a/b", "/opt/joblet", lambda: ["j1"], tmp_path, wait_s=0).release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a%b.lock", "a%b.owner"]
    forget_owner("a/b", tmp_path)
    forget_owner("a/b", tmp_path)  # nothing left: harmless
    assert list(tmp_path.iterdir()) == []
