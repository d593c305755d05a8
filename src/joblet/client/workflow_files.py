"""The files a workflow's jobs upload, read relative to its YAML file.

Each path a job lists under `uploads` is read from the YAML file's directory
and sent once as a workflow file at that same relative path (a directory with
its whole tree); the server gives each job only the files it listed. A path
must stay inside the YAML file's directory, symbolic links included, so that
a workflow someone else wrote cannot make rnx send a private file of the
user's (`data -> ~/.ssh`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from joblet.client.errors import EXIT_USAGE, CliError
from joblet.client.uploads import UploadEntry, read_file_entry, tree_entries


def workflow_files(yaml_dir: Path, paths: Iterable[str]) -> list[UploadEntry]:
    """Entries for `paths` (relative, as validated), each once, in order."""
    top = yaml_dir.resolve()
    entries: dict[str, UploadEntry] = {}
    for path in dict.fromkeys(paths):
        local = yaml_dir / path
        _check_inside(local, path, top)
        if local.is_dir():
            found = tree_entries(local, path)
        elif local.exists():
            found = [read_file_entry(local, path)]
        else:
            raise CliError(
                f"upload {path!r}: no such file next to the workflow ({local})", EXIT_USAGE
            )
        for entry in found:
            entries.setdefault(entry.path, entry)
    return list(entries.values())


def missing_uploads(yaml_dir: Path, paths: Iterable[str]) -> list[str]:
    """The paths that do not exist next to the YAML file."""
    return [path for path in dict.fromkeys(paths) if not (yaml_dir / path).exists()]


def _check_inside(local: Path, path: str, top: Path) -> None:
    target = local.resolve()
    if not target.is_relative_to(top):
        raise CliError(
            f"upload {path!r} resolves to {target}, outside the workflow's directory {top}",
            EXIT_USAGE,
        )
