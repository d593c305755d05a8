"""Read local files and directories into upload entries for RunJob.

Layout in the job's workspace:
- `--upload PATH` puts the file at `<basename>`, with its permission bits.
- `--upload-dir DIR` puts the tree at `<basename of DIR>/...`: the directory and
  each sub-directory become directory entries (so empty ones survive), files
  keep their relative paths and permission bits. Symbolic links to files in
  the tree are read through (their content is uploaded, like `scp` does); a
  link to a file outside the tree is refused, so a tree someone else prepared
  (`key -> ~/.ssh/id_rsa`) cannot make rnx send a private file of the user's.
  Links to directories are skipped so that a link cycle cannot make the
  upload endless. Other special files (fifos, sockets, devices) are refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from joblet.client.errors import EXIT_USAGE, CliError


@dataclass(frozen=True)
class UploadEntry:
    path: str  # relative to the job's workspace, '/'-separated
    content: bytes
    mode: int  # permission bits (st_mode & 0o7777)
    is_directory: bool = False


def _fail(message: str) -> CliError:
    return CliError(message, EXIT_USAGE)


def read_file_entry(path: Path, name: str) -> UploadEntry:
    """Read one regular file (following a symlink) into an entry named `name`."""
    try:
        # stat before open: opening a fifo would block until a writer appears
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise _fail(f"cannot upload {path}: not a regular file")
        content = path.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot upload {path}: {exc.strerror}") from exc
    return UploadEntry(name, content, stat.S_IMODE(info.st_mode))


def file_upload(path: Path) -> UploadEntry:
    if path.is_dir():
        raise _fail(f"cannot upload {path}: it is a directory (use --upload-dir)")
    return read_file_entry(path, path.name)


def directory_upload(root: Path) -> list[UploadEntry]:
    """The tree under `root` as entries below `root`'s own name."""
    if not root.is_dir():
        raise _fail(f"cannot upload directory {root}: not a directory")
    base = root.resolve().name
    if not base:
        raise _fail(f"cannot upload directory {root}: it has no name to put it under")
    return list(_walk(root, base))


def tree_entries(root: Path, base: str) -> list[UploadEntry]:
    """The tree under `root` as entries below `base` (a workspace path)."""
    return list(_walk(root, base))


def _check_inside(link: Path, top: Path) -> None:
    """Refuse a symlink in an uploaded tree whose file lies outside it."""
    target = link.resolve()
    if not target.is_relative_to(top):
        raise _fail(
            f"cannot upload {link}: it links to {target}, outside {top}"
            " (copy the file into the directory to upload it)"
        )


def _walk(root: Path, base: str) -> Iterator[UploadEntry]:
    def raise_error(exc: OSError) -> None:
        raise _fail(f"cannot upload {exc.filename}: {exc.strerror}") from exc

    top = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, onerror=raise_error):
        here = Path(dirpath)
        relative = here.relative_to(root).as_posix()
        prefix = base if relative == "." else f"{base}/{relative}"
        yield UploadEntry(prefix, b"", stat.S_IMODE(here.stat().st_mode), is_directory=True)
        # os.walk does not descend into links to directories; drop them from
        # the listing too so that each entry it yields is a real directory.
        dirnames[:] = sorted(d for d in dirnames if not (here / d).is_symlink())
        for name in sorted(filenames):
            if (here / name).is_symlink():
                _check_inside(here / name, top)
            yield read_file_entry(here / name, f"{prefix}/{name}")


def collect_uploads(files: Sequence[str], directories: Sequence[str]) -> list[UploadEntry]:
    """All entries for the given flags; a path uploaded twice is an error."""
    entries = [file_upload(Path(f)) for f in files]
    for directory in directories:
        entries.extend(directory_upload(Path(directory)))
    _check_unique(entry.path for entry in entries)
    return entries


def _check_unique(paths: Iterable[str]) -> None:
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise _fail(f"two uploads would both land at {path!r} in the workspace")
        seen.add(path)
