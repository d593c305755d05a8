"""At start the daemon removes only leftover job groups it can prove are its root's."""

from __future__ import annotations

from pathlib import Path

from joblet.daemon.cgroup_owner import proven_own
from joblet.daemon.server import clean_leftovers
from joblet.resources.ownership import claim_parent


class FakeGroup:
    def __init__(self, job_id: str, log: list[str]) -> None:
        self.job_id = job_id
        self._log = log

    def kill_all(self) -> None:
        self._log.append(f"kill {self.job_id}")

    def remove(self) -> None:
        self._log.append(f"remove {self.job_id}")

    def remove_if_empty(self) -> bool:
        return False


class FakeCgroups:
    version = "v2"

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.log: list[str] = []

    def leftover_job_ids(self) -> list[str]:
        return self.ids

    def open(self, job_id: str) -> FakeGroup:
        return FakeGroup(job_id, self.log)


def test_only_proven_groups_of_ended_jobs_are_removed() -> None:
    cgroups = FakeCgroups(["mine-ended", "mine-running", "foreign"])
    clean_leftovers(cgroups, {"mine-running"}, lambda job_id: job_id.startswith("mine"))
    assert cgroups.log == ["kill mine-ended", "remove mine-ended"]


def test_a_group_is_proven_by_the_record_and_the_job_directory(tmp_path: Path) -> None:
    locks, jobs = tmp_path / "locks", tmp_path / "root" / "jobs"
    (jobs / "known").mkdir(parents=True)
    root = tmp_path / "root"

    first = claim_parent("p", root, lambda: ["known"], locks, wait_s=0)
    # No record before this daemon's first start: nothing there is provably ours.
    assert not proven_own(first, jobs, "known")
    first.release()  # groups remain: the record stays

    again = claim_parent("p", root, lambda: ["known", "stranger"], locks, wait_s=0)
    assert proven_own(again, jobs, "known")
    assert not proven_own(again, jobs, "stranger")  # no directory under this root
    again.release()

    other = claim_parent("p", tmp_path / "other", lambda: [], locks, wait_s=0)
    assert not proven_own(other, jobs, "known")  # the record named another root
    other.release()
