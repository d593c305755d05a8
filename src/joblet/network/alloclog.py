"""The jobs' network addresses, as an append-only log next to state.json.

A bridge job's start and end each record one line. Neither may wait for the
disk: an fsync commits the file system's whole journal, and so does, on
ext4, replacing a file by rename (auto_da_alloc allocates the new file's
blocks at once, inside the running transaction); on a busy disk either costs
milliseconds, taking whatever else is being written with it (other jobs'
files, a runtime's records). An append to an open file does neither.

A daemon killed with `kill -9` finds every line it wrote (the kernel keeps
them). A line cut short can only be the last, from an operation that never
returned: no job was launched on an address whose line is missing, and a
release whose line is missing leaves an allocation the next start drops with
the job's other leftovers. A host crash ends every job, so whatever it leaves
of the log then names only jobs that are gone. The log is rewritten whole
(temp file + rename, never fsynced) at each start and when it has grown to
many times what is live, so it stays small.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict

from joblet.network.state import Allocation, NetState, load_state

log = logging.getLogger(__name__)
LOG_FILE = "allocations.log"
COMPACT_AT = 4096  # records; and only when the live ones are under a quarter


def add_record(alloc: Allocation, cursor: int) -> str:
    """The line for a new allocation and where its network's next search starts."""
    return json.dumps({"add": asdict(alloc), "cursor": cursor}, sort_keys=True) + "\n"


def drop_record(job_id: str) -> str:
    return json.dumps({"drop": job_id}) + "\n"


def snapshot(allocations: Mapping[str, Allocation], cursors: Mapping[str, int]) -> str:
    """A whole log holding exactly `allocations` and `cursors`."""
    lines = [json.dumps({"cursors": dict(cursors)}, sort_keys=True) + "\n"]
    lines += [json.dumps({"add": asdict(a)}, sort_keys=True) + "\n" for a in allocations.values()]
    return "".join(lines)


def replay(lines: Iterable[str]) -> tuple[dict[str, Allocation], dict[str, int], int]:
    """(allocations, cursors, lines that could not be read) from a log's lines."""
    allocations: dict[str, Allocation] = {}
    cursors: dict[str, int] = {}
    bad = 0
    for line in lines:
        try:
            record = json.loads(line)
            if "add" in record:
                alloc = Allocation(**record["add"])
                allocations[alloc.job_id] = alloc
                if "cursor" in record:
                    cursors[alloc.network] = int(record["cursor"])
            elif "drop" in record:
                allocations.pop(str(record["drop"]), None)
            else:
                cursors.update({str(k): int(v) for k, v in record["cursors"].items()})
        except (ValueError, TypeError, KeyError, AttributeError):
            bad += 1
    return allocations, cursors, bad


class AllocationLog:
    """The open log of one state directory."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, LOG_FILE)
        self._fd = -1
        self._records = 0

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def load(self) -> tuple[dict[str, Allocation], dict[str, int]]:
        """What the log holds (empty when there is none)."""
        try:
            with open(self.path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return {}, {}
        allocations, cursors, bad = replay(lines)
        if bad:
            log.warning("%s: %d unreadable line(s) skipped", self.path, bad)
        self._records = len(lines)
        return allocations, cursors

    def append(self, line: str, live: Mapping[str, Allocation], cursors: Mapping[str, int]) -> None:
        """Record one change; rewrite the whole log instead when it has grown
        to many times what `live` (the state after the change) holds."""
        if self._records >= COMPACT_AT and self._records > 4 * len(live):
            self.rewrite(live, cursors)
            return
        if self._fd < 0:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._fd = os.open(self.path, flags, 0o600)
        os.write(self._fd, line.encode())
        self._records += 1

    def rewrite(self, live: Mapping[str, Allocation], cursors: Mapping[str, int]) -> None:
        self.close()
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            f.write(snapshot(live, cursors))
        os.replace(tmp, self.path)
        self._records = len(live) + 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def load_with_log(state_path: str, alloc_log: AllocationLog | None = None) -> NetState:
    """state.json with the allocations of the log beside it (where there is
    none yet: those an earlier version kept in state.json)."""
    state = load_state(state_path)
    alloc_log = alloc_log or AllocationLog(os.path.dirname(state_path))
    if alloc_log.exists():
        state.allocations, state.cursors = alloc_log.load()
    return state
