"""runtime.json: what the daemon knows of one install, written once at commit.

Everything ListRuntimes answers comes from here (sizeBytes was measured at
install), so listing never walks a tree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from joblet.runtimes.spec import RuntimeSpec, parse_spec

BUILD_ID = re.compile(r"[0-9a-f]{32}")
RECORD_FILE = "runtime.json"
TREE_DIR = "tree"


@dataclass(frozen=True)
class InstalledRuntime:
    spec: RuntimeSpec
    spec_text: str
    build_id: str
    source: str  # "local" or the URL / repository it came from
    sha256: str  # of the sources as received
    size_bytes: int
    packages: tuple[str, ...]  # the build's .packages, else the spec's
    installed_at: str  # RFC3339, UTC
    build_job_id: str

    @property
    def name(self) -> str:
        return self.spec.name


def record_json(record: InstalledRuntime) -> str:
    return json.dumps(
        {
            "name": record.name,
            "buildId": record.build_id,
            "spec": record.spec_text,
            "source": record.source,
            "sha256": record.sha256,
            "sizeBytes": record.size_bytes,
            "packages": list(record.packages),
            "installedAt": record.installed_at,
            "buildJobId": record.build_job_id,
        },
        indent=2,
    )


def parse_record(text: str) -> InstalledRuntime:
    """A record from runtime.json; ValueError (or a SpecError) when it is damaged."""
    data: dict[str, Any] = json.loads(text)
    spec = parse_spec(str(data["spec"]))
    build_id = str(data["buildId"])
    if spec.name != data["name"] or BUILD_ID.fullmatch(build_id) is None:
        raise ValueError("runtime.json does not match its spec")
    return InstalledRuntime(
        spec=spec,
        spec_text=str(data["spec"]),
        build_id=build_id,
        source=str(data.get("source", "")),
        sha256=str(data.get("sha256", "")),
        size_bytes=int(data["sizeBytes"]),
        packages=tuple(str(p) for p in data.get("packages", ())),
        installed_at=str(data.get("installedAt", "")),
        build_job_id=str(data.get("buildJobId", "")),
    )
