"""What of each job is uploaded, kept on the local disk (ROOT/archive/JOB.json).

A segment is recorded here only after the store confirmed it; the job is
`archived` only after its manifest was written. Losing this file costs a
re-upload of the same bytes to the same keys, never a record.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class JobArchiveState:
    # key -> (stored bytes, sha256), once the store confirmed the object
    uploaded: dict[str, tuple[int, str]] = field(default_factory=dict)
    archived_at: float = 0.0  # 0: no manifest yet
    signature: list[str] = field(default_factory=list)  # what the manifest names


class ArchiveStateDir:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.json"

    def load(self, job_id: str) -> JobArchiveState:
        try:
            raw = json.loads(self._path(job_id).read_text())
            return JobArchiveState(
                {str(k): (int(v[0]), str(v[1])) for k, v in raw["uploaded"].items()},
                float(raw["archivedAt"]),
                [str(s) for s in raw["signature"]],
            )
        except FileNotFoundError:
            return JobArchiveState()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("archive state of %s unreadable (%s); uploading it again", job_id, exc)
            return JobArchiveState()

    def save(self, job_id: str, state: JobArchiveState) -> None:
        body = {
            "uploaded": {k: list(v) for k, v in state.uploaded.items()},
            "archivedAt": state.archived_at,
            "signature": state.signature,
        }
        tmp = self._path(job_id).with_suffix(".tmp")
        tmp.write_text(json.dumps(body, separators=(",", ":")))
        os.replace(tmp, self._path(job_id))

    # Deletions owed to the store: a file per job that the upload loop
    # applies, kept until the store confirmed (persist may restart between).

    def has(self, job_id: str) -> bool:
        return self._path(job_id).exists()

    def owes(self, job_id: str) -> bool:
        return (self.directory / "deleted" / job_id).exists()

    def owe_deletion(self, job_id: str, whole: bool) -> None:
        tombs = self.directory / "deleted"
        tombs.mkdir(exist_ok=True)
        path = tombs / job_id
        if whole or not path.exists():  # a whole deletion is never narrowed
            path.write_text("job" if whole else "manifest")

    def owed_deletions(self) -> list[tuple[str, bool]]:
        tombs = self.directory / "deleted"
        if not tombs.is_dir():
            return []
        return [(path.name, path.read_text() == "job") for path in sorted(tombs.iterdir())]

    def paid(self, job_id: str) -> None:
        (self.directory / "deleted" / job_id).unlink(missing_ok=True)

    def forget(self, job_id: str) -> None:
        self._path(job_id).unlink(missing_ok=True)

    def archived(self) -> dict[str, float]:
        """Every archived job's id and when its manifest was written."""
        found: dict[str, float] = {}
        for path in self.directory.glob("*.json"):
            state = self.load(path.stem)
            if state.archived_at:
                found[path.stem] = state.archived_at
        return found
