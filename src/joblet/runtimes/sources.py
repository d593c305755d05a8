"""Uploaded runtime sources: the checks before any byte is written, pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from joblet.errors import InvalidArgument, ResourceExhausted
from joblet.jobs.model import Upload
from joblet.jobs.uploads import normalize_upload_path
from joblet.runtimes.reference import normalize
from joblet.runtimes.spec import RuntimeSpec, parse_spec

SPEC_FILE = "runtime.yml"
MAX_FILES = 100_000


class RuntimeFileLike(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    @property
    def executable(self) -> bool: ...


def check_files(files: Iterable[RuntimeFileLike], max_bytes: int) -> tuple[Upload, ...]:
    """The files as uploads: paths checked as job uploads are, no duplicates,
    at most `max_bytes` in all."""
    uploads: list[Upload] = []
    seen: set[str] = set()
    total = 0
    for item in files:
        path = normalize_upload_path(item.path)
        if path in seen:
            raise InvalidArgument(f"runtime file {path!r} is given twice")
        seen.add(path)
        total += len(item.content)
        if total > max_bytes:
            raise ResourceExhausted(f"the runtime's files are over {max_bytes:,} bytes")
        if len(uploads) >= MAX_FILES:
            raise ResourceExhausted(f"a runtime has at most {MAX_FILES:,} files")
        mode = 0o755 if item.executable else 0o644
        uploads.append(Upload(path, item.content, mode, is_directory=False))
    return tuple(uploads)


def spec_of(uploads: Sequence[Upload], requested: str) -> tuple[RuntimeSpec, str]:
    """The validated runtime.yml among the files, matching the requested name if any."""
    text_bytes = next((u.content for u in uploads if u.path == SPEC_FILE), None)
    if text_bytes is None:
        raise InvalidArgument(f"the runtime's files hold no {SPEC_FILE} at their top")
    try:
        text = text_bytes.decode()
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"{SPEC_FILE} is not UTF-8 text") from exc
    spec = parse_spec(text)
    if requested and normalize(requested) != spec.name:
        raise InvalidArgument(
            f"runtime {normalize(requested)} was asked for but {SPEC_FILE} names {spec.name}"
        )
    if not any(u.path == spec.build.script for u in uploads):
        raise InvalidArgument(f"the build script {spec.build.script!r} is not among the files")
    return spec, text


def digest(uploads: Iterable[Upload]) -> str:
    """sha256 over the files, by path, so the same directory gives the same digest."""
    h = hashlib.sha256()
    for upload in sorted(uploads, key=lambda u: u.path):
        h.update(upload.path.encode() + b"\0" + str(len(upload.content)).encode() + b"\0")
        h.update(upload.content)
    return h.hexdigest()
