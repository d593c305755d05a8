"""Files posted with the run-a-job and workflow forms, as the API's uploads:
each file goes into the job's workspace under its own base name (the
browser's path is never trusted), all of them together at most
`ui.maxUploadBytes`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, BinaryIO

from joblet.api import joblet_pb2 as pb
from joblet.ui.forms import FormError

FILE_MODE = 0o644


def upload_name(filename: str, field: str) -> str:
    """The workspace name of an uploaded file: its base name, nothing else."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in ("", ".", "..") or "\x00" in name:
        raise FormError(field, f"{field}: {filename!r} is not a file name")
    return name


def split_form(posted: Mapping[str, Any]) -> tuple[dict[str, str], list[tuple[str, str, BinaryIO]]]:
    """(text fields, [(field, file name, file)]) of a posted form; a file
    input left empty (no file name) is no file."""
    texts: dict[str, str] = {}
    files: list[tuple[str, str, BinaryIO]] = []
    for key, value in posted.items():
        filename = getattr(value, "filename", None)
        if filename is None:
            texts[key] = str(value)
        elif filename:
            files.append((key, filename, value.file))
    return texts, files


def read_uploads(files: Iterable[tuple[str, str, BinaryIO]], limit: int) -> list[pb.FileUpload]:
    """The files as FileUpload entries; FormError when together they pass
    `limit` bytes or two share a name."""
    uploads: list[pb.FileUpload] = []
    total, names = 0, set()
    for field, filename, stream in files:
        name = upload_name(filename, field)
        if name in names:
            raise FormError(field, f"{field}: two files are named {name!r}")
        names.add(name)
        content = stream.read(limit - total + 1)
        total += len(content)
        if total > limit:
            raise FormError(field, f"{field}: the files are larger than the {limit} bytes "
                            "the UI accepts (ui.maxUploadBytes)")  # fmt: skip
        uploads.append(pb.FileUpload(path=name, content=content, mode=FILE_MODE))
    return uploads
