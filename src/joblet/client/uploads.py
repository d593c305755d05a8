"""Local files and directories as upload entries for RunJob.

Layout in the job's workspace:
- `--upload PATH` puts the file at `<basename>`, with its permission bits.
- `--upload-dir DIR` puts the tree at `<basename of DIR>/...`: the directory and
  each sub-directory become directory entries (so empty ones survive), files
  keep their relative paths and permission bits. A `.rnxignore` at the top of
  DIR (gitignore syntax) leaves out what it matches. Symbolic links to files in
  the tree are read through (their content is uploaded, like `scp` does); a
  link to a file outside the tree is refused, so a tree someone else prepared
  (`key -> ~/.ssh/id_rsa`) cannot make rnx send a private file of the user's.
  Links to directories are not followed (a link cycle would make the upload
  endless) and are reported. Other special files (fifos, sockets, devices)
  are refused.

Scanning only stats: contents are read later, whole for a small upload or in
chunks while streaming a large one.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from joblet.client.errors import EXIT_USAGE, CliError

IGNORE_FILE = ".rnxignore"

Warn = Callable[[str], None]


@dataclass(frozen=True)
class UploadEntry:
    path: str  # relative to the job's workspace, '/'-separated
    content: bytes
    mode: int  # permission bits (st_mode & 0o7777)
    is_directory: bool = False
    source: Path | None = None  # the local file, until its content is read
    size: int = 0


def _fail(message: str) -> CliError:
    return CliError(message, EXIT_USAGE)


def _ignore_warnings(_: str) -> None:
    pass


def file_entry(path: Path, name: str) -> UploadEntry:
    """One regular file (following a symlink) as an entry named `name`, not yet read."""
    try:
        # stat, never open: opening a fifo would block until a writer appears
        info = path.stat()
    except OSError as exc:
        raise _fail(f"cannot upload {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise _fail(f"cannot upload {path}: not a regular file")
    return UploadEntry(name, b"", stat.S_IMODE(info.st_mode), source=path, size=info.st_size)


def read_file_entry(path: Path, name: str) -> UploadEntry:
    """Read one regular file (following a symlink) into an entry named `name`."""
    return load(file_entry(path, name))


def load(entry: UploadEntry) -> UploadEntry:
    """The entry with its content read."""
    if entry.source is None or entry.is_directory:
        return entry
    try:
        content = entry.source.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot upload {entry.source}: {exc.strerror}") from exc
    return replace(entry, content=content, size=len(content))


def file_upload(path: Path) -> UploadEntry:
    """`--upload PATH`, read."""
    return load(_scan_file(path))


def directory_upload(root: Path, warn: Warn = _ignore_warnings) -> list[UploadEntry]:
    """`--upload-dir DIR`, read."""
    return [load(entry) for entry in _scan_dir(root, warn)]


def _scan_file(path: Path) -> UploadEntry:
    if path.is_dir():
        raise _fail(f"cannot upload {path}: it is a directory (use --upload-dir)")
    return file_entry(path, path.name)


def _scan_dir(root: Path, warn: Warn) -> list[UploadEntry]:
    """The tree under `root` as entries below `root`'s own name."""
    if not root.is_dir():
        raise _fail(f"cannot upload directory {root}: not a directory")
    base = root.resolve().name
    if not base:
        raise _fail(f"cannot upload directory {root}: it has no name to put it under")
    return list(_walk(root, base, _ignore_rules(root), warn))


def _ignore_rules(root: Path) -> Callable[[str], bool]:
    """Whether a path relative to `root` (directories end in '/') is ignored."""
    try:
        lines = (root / IGNORE_FILE).read_text().splitlines()
    except FileNotFoundError:
        return lambda _: False
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {root / IGNORE_FILE}: {exc}") from exc
    import pathspec  # only where a tree has one

    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    return spec.match_file


def tree_entries(root: Path, base: str, warn: Warn | None = None) -> list[UploadEntry]:
    """The tree under `root` as entries below `base` (a workspace path),
    its .rnxignore applied."""
    return list(_walk(root, base, _ignore_rules(root), warn or _ignore_warnings))


def _check_inside(link: Path, top: Path) -> None:
    """Refuse a symlink in an uploaded tree whose file lies outside it."""
    target = link.resolve()
    if not target.is_relative_to(top):
        raise _fail(
            f"cannot upload {link}: it links to {target}, outside {top}"
            " (copy the file into the directory to upload it)"
        )


def _walk(
    root: Path, base: str, ignored: Callable[[str], bool], warn: Warn
) -> Iterator[UploadEntry]:
    def raise_error(exc: OSError) -> None:
        raise _fail(f"cannot upload {exc.filename}: {exc.strerror}") from exc

    top = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, onerror=raise_error):
        here = Path(dirpath)
        relative = here.relative_to(root).as_posix()
        inner = "" if relative == "." else f"{relative}/"
        prefix = base if relative == "." else f"{base}/{relative}"
        yield UploadEntry(prefix, b"", stat.S_IMODE(here.stat().st_mode), is_directory=True)
        kept = []
        for name in sorted(dirnames):
            if ignored(f"{inner}{name}/"):
                continue
            if (here / name).is_symlink():
                warn(f"not uploading {here / name}: a symlink to a directory is not followed")
                continue
            kept.append(name)
        dirnames[:] = kept  # os.walk descends only into these
        for name in sorted(filenames):
            if ignored(f"{inner}{name}"):
                continue
            if (here / name).is_symlink():
                _check_inside(here / name, top)
            yield file_entry(here / name, f"{prefix}/{name}")


def scan_uploads(
    files: Sequence[str], directories: Sequence[str], warn: Warn = _ignore_warnings
) -> list[UploadEntry]:
    """All entries for the given flags, contents not read; a path twice is an error."""
    entries = [_scan_file(Path(f)) for f in files]
    for directory in directories:
        entries.extend(_scan_dir(Path(directory), warn))
    _check_unique(entry.path for entry in entries)
    return entries


def collect_uploads(
    files: Sequence[str], directories: Sequence[str], warn: Warn = _ignore_warnings
) -> list[UploadEntry]:
    """`scan_uploads` with every file's content read."""
    return [load(entry) for entry in scan_uploads(files, directories, warn)]


def total_size(entries: Iterable[UploadEntry]) -> int:
    return sum(entry.size for entry in entries)


def _check_unique(paths: Iterable[str]) -> None:
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise _fail(f"two uploads would both land at {path!r} in the workspace")
        seen.add(path)
