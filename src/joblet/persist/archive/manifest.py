"""A job's manifest: what of it is archived, and the checksums (pure).

It is written after every segment it names is uploaded and confirmed, and it
is deleted first, so a reader that finds a manifest finds the whole job.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from joblet.persist.store.segment import SegmentInfo

VERSION = 1


@dataclass(frozen=True)
class ArchivedSegment:
    info: SegmentInfo
    sha256: str


@dataclass
class Manifest:
    job_id: str
    node_id: str
    archived_at: float  # when the manifest was written (retention ages it)
    last_write: float  # the job's newest local write
    kinds: dict[str, list[ArchivedSegment]] = field(default_factory=dict)

    def segments(self, kind: str) -> list[ArchivedSegment]:
        return self.kinds.get(kind, [])

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {
            "version": VERSION,
            "jobId": self.job_id,
            "nodeId": self.node_id,
            "archivedAt": self.archived_at,
            "lastWrite": self.last_write,
            "kinds": {
                kind: [{**asdict(s.info), "sha256": s.sha256} for s in segments]
                for kind, segments in self.kinds.items()
            },
        }
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """ValueError for anything that is not a manifest this version reads."""
        try:
            raw = json.loads(data)
            if raw.get("version") != VERSION:
                raise ValueError(f"manifest version {raw.get('version')!r} is not {VERSION}")
            kinds = {
                str(kind): [
                    ArchivedSegment(SegmentInfo.from_json(item), str(item["sha256"]))
                    for item in items
                ]
                for kind, items in raw["kinds"].items()
            }
            return cls(
                str(raw["jobId"]),
                str(raw["nodeId"]),
                float(raw["archivedAt"]),
                float(raw["lastWrite"]),
                kinds,
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a manifest: {exc}") from exc
