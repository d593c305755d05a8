"""A placing daemon that restarted takes its placed jobs up again: what the
store says it holds, and the placed jobs restored running here, each get
the outcome that keeps the store and the node in step."""

from __future__ import annotations

import asyncio
from typing import cast

from joblet.cluster.queue import PlacementQueue
from joblet.daemon.placement import Tokens
from joblet.jobs.model import Job, JobSpec, JobStatus

ME = "me"


class Store:
    def __init__(self, records: dict[str, dict[str, str]]) -> None:
        self.records = records
        self.asked: list[str] = []
        self.finished: list[tuple[str, int, str, str]] = []
        self.given_back: list[tuple[str, int]] = []

    async def owned(self, also: list[str]) -> dict[str, dict[str, str]]:
        self.asked = sorted(also)
        return self.records

    async def finish(self, job_id: str, token: int, state: str, reason: str) -> bool:
        self.finished.append((job_id, token, state, reason))
        return True

    async def give_back(self, job_id: str, token: int) -> bool:
        self.given_back.append((job_id, token))
        return True


def test_a_restarted_node_takes_each_of_its_placed_jobs_up_again() -> None:
    def rec(state: str, node: str = ME, token: str = "3", retry: str = "0") -> dict[str, str]:
        return {"token": token, "state": state, "node": node, "retry": retry}

    store = Store({
        "running": rec("RUNNING"),  # restored running here: held again
        "ended": rec("RUNNING"),  # ended here while the daemon was down
        "claimed": rec("CLAIMED"),  # claimed, never started: queued again
        "vanished": rec("RUNNING"),  # started, unknown here now: lost
        "retried": rec("RUNNING", retry="1"),  # the same, opted in to a retry: queued again
        "moved": rec("FAILED", node=ME, token="4"),  # the janitor decided: killed here
        "other": rec("RUNNING", node="them"),  # another node's: left alone
    })  # fmt: skip
    spec = JobSpec(command="true")
    local = {
        "running": Job("running", spec, JobStatus.RUNNING),
        "ended": Job("ended", spec, JobStatus.COMPLETED, ended_at=9.0, end_reason="exit code 0"),
        "moved": Job("moved", spec, JobStatus.RUNNING),
        "other": Job("other", spec, JobStatus.COMPLETED),
    }
    killed: list[str] = []
    cleared: list[str] = []

    async def lost(job_id: str) -> None:
        killed.append(job_id)

    async def clear(job_id: str) -> None:
        cleared.append(job_id)

    tokens = Tokens(cast("PlacementQueue", store), lost, clear)
    running = [j for j, job in local.items() if not job.status.is_final]
    asyncio.run(tokens.adopt(ME, local.get, running))
    assert store.asked == ["moved", "running"]
    assert store.finished == [
        ("ended", 3, "COMPLETED", "exit code 0"),
        ("vanished", 3, "FAILED", "node lost"),
    ]
    assert store.given_back == [("claimed", 3), ("retried", 3)]
    assert killed == ["moved"] and tokens.moved == {"moved": "FAILED"}
    # Each of its own jobs it has no record of: whatever a run of it left
    # here (its record lost with the crash) goes before the cluster hears.
    assert cleared == ["claimed", "vanished", "retried"]
    assert tokens._tokens == {"running": 3, "moved": -1}


class Current:
    def __init__(self, now: dict[str, tuple[int, str]]) -> None:
        self.now = now

    async def current(self, held: dict[str, int]) -> dict[str, tuple[int, str]]:
        return {job_id: self.now[job_id] for job_id in held}


def test_a_node_kills_only_what_the_cluster_moved_on() -> None:
    """Its token changed: the cluster decided (FAILED, queued again); the
    same token: still this node's; a record gone from the store: no
    decision, left running."""
    store = Current({"same": (1, "RUNNING"), "failed": (3, "FAILED"),
                     "again": (4, "QUEUED"), "gone": (0, "")})  # fmt: skip
    killed: list[str] = []

    async def lost(job_id: str) -> None:
        killed.append(job_id)

    tokens = Tokens(cast("PlacementQueue", store), lost)
    for job_id, token in (("same", 1), ("failed", 2), ("again", 2), ("gone", 5)):
        tokens.hold(job_id, token, retry=False)
    assert asyncio.run(tokens.verify()) == ["again", "failed"]
    assert killed == ["again", "failed"]
    assert tokens.moved == {"again": "QUEUED", "failed": "FAILED"}
    assert asyncio.run(tokens.verify()) == []  # asked once each


class Refusing:
    """A store whose cluster moved the job on: an end written with a token
    older than `current` is refused."""

    def __init__(self, current: int) -> None:
        self.newest = current
        self.finished: list[tuple[int, str]] = []
        self.notes: list[str] = []

    async def finish(self, job_id: str, token: int, state: str, reason: str) -> bool:
        self.finished.append((token, state))
        return token >= self.newest

    async def state(self, job_id: str) -> dict[str, str]:
        return {"state": "RUNNING", "node": ME, "token": str(self.newest)}

    async def note(self, job_id: str, text: str) -> None:
        self.notes.append(text)


def _earlier_run_ends(claimed_again: bool) -> tuple[Refusing, list[str]]:
    store, overruled = Refusing(current=15), list[str]()

    async def lost(job_id: str) -> None:
        overruled.append(job_id)

    async def scenario() -> None:
        tokens = Tokens(cast("PlacementQueue", store), lost)
        tokens.hold("job", 13, True)
        # The earlier run (token 13) ends here: killed before the job runs
        # here again, or after the cluster moved it on elsewhere.
        ended = Job("job", JobSpec(command="sleep"), JobStatus.STOPPED, ended_at=1.0,
                    end_reason="stopped by the cluster, which queued it again")  # fmt: skip
        tokens.changed(ended)
        if claimed_again:
            tokens.hold("job", 15, True)
        await tokens.close()

    asyncio.run(scenario())
    return store, overruled


def test_an_earlier_runs_refused_end_leaves_the_run_claimed_here_again_alone() -> None:
    """The earlier run's end is refused (stale token) after the job was
    claimed here again: the local record is the new run's and stays as it
    is (overruling it as lost ended the retry FAILED "node lost")."""
    store, overruled = _earlier_run_ends(claimed_again=True)
    assert store.finished == [(13, "STOPPED")]
    assert len(store.notes) == 1  # what really happened, beside the cluster's decision
    assert overruled == []


def test_a_refused_end_makes_the_local_record_follow_the_cluster() -> None:
    store, overruled = _earlier_run_ends(claimed_again=False)
    assert store.finished == [(13, "STOPPED")]
    assert overruled == ["job"]


class ClaimedHereAgain(Refusing):
    """Asked which held runs the cluster moved on, it answers after the job
    was claimed here again (token 3) and its earlier run (token 1) ended."""

    def __init__(self) -> None:
        super().__init__(current=3)
        self.tokens: Tokens | None = None

    async def current(self, held: dict[str, int]) -> dict[str, tuple[int, str]]:
        assert self.tokens is not None and held == {"job": 1}
        self.tokens.hold("job", 3, True)  # the new run, held while the question was out
        return {"job": (3, "CLAIMED")}


def test_a_run_that_gave_way_to_a_newer_run_here_is_not_moved_on() -> None:
    """The fence's question raced the job's new claim here: the answer is
    about the earlier run, not the new one, which ends with its own token
    (taken as moved on, the new run's end became a note and the job stayed
    RUNNING in the cluster for good)."""
    store, overruled = ClaimedHereAgain(), list[str]()

    async def lost(job_id: str) -> None:
        overruled.append(job_id)

    async def scenario() -> list[str]:
        tokens = Tokens(cast("PlacementQueue", store), lost)
        store.tokens = tokens
        tokens.hold("job", 1, True)
        moved = await tokens.verify()
        ended = Job("job", JobSpec(command="sleep"), JobStatus.COMPLETED, ended_at=2.0,
                    end_reason="exit code 0")  # fmt: skip
        tokens.changed(ended)
        await tokens.close()
        return moved

    assert asyncio.run(scenario()) == []
    assert overruled == []
    assert store.finished == [(3, "COMPLETED")] and store.notes == []
