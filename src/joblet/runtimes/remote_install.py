"""The remote half of an install: download (the daemon), then unpack (a job).

The daemon only downloads, within runtime.allowedSources. The archive is
unpacked inside the build sandbox by the host's python3 running
joblet.runtimes.unpack, copied with the archive into the unpack job's /src:
an archive that tricks the unpacker still lands in a sandbox, never on the
host's paths. The unpacked tree is then read without following links.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import stat
from pathlib import Path

import joblet
from joblet.errors import InvalidArgument
from joblet.runtimes import archive, unpack
from joblet.runtimes.archive import Caps
from joblet.runtimes.seams import BuildPlan
from joblet.runtimes.spec import relative_path_problem

LIB_DIR = ".joblet-lib"
SCRIPT = "unpack.sh"
UNPACK_TIMEOUT_S = 600.0
UNPACK_MEMORY_MB = 512
MAX_MEMBERS = 50_000
MAX_RATIO = 200.0
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def check_subpath(path: str) -> str:
    """The request's `path` (the directory holding runtime.yml), "" for the top."""
    if not path or path.strip("/") == "":
        return ""
    problem = relative_path_problem("path", path.strip("/"))
    if problem:
        raise InvalidArgument(problem)
    return path.strip("/")


def prepare_unpack(fetch_dir: Path, archive_path: str, dest: str, caps: Caps, top: bool) -> None:
    """Put the unpacker (stdlib only) and a script running it next to the archive."""
    os.chmod(archive_path, 0o644)  # the sandbox's root may be no host root
    lib = fetch_dir / LIB_DIR
    package = lib / "joblet" / "runtimes"
    package.mkdir(parents=True, mode=0o755)
    shutil.copyfile(joblet.__file__, lib / "joblet" / "__init__.py")
    for module in (archive, unpack):
        assert module.__file__ is not None
        shutil.copyfile(module.__file__, package / Path(module.__file__).name)
    (package / "__init__.py").write_text('"""Runtimes."""\n')
    name = os.path.basename(archive_path)
    argv = unpack.command(f"/src/{LIB_DIR}", f"/src/{name}", dest, caps, top=top)
    (fetch_dir / SCRIPT).write_text("set -e\nexec " + " ".join(map(shlex.quote, argv)) + "\n")
    for path in [lib, *lib.rglob("*"), fetch_dir / SCRIPT]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def unpack_plan(name: str, fetch_dir: Path, dest_dir: Path, max_bytes: int) -> BuildPlan:
    return BuildPlan(
        runtime_name=name,
        source_dir=str(fetch_dir),
        staging_dir=str(dest_dir),
        script=SCRIPT,
        timeout_s=UNPACK_TIMEOUT_S,
        max_memory_mb=UNPACK_MEMORY_MB,
        scratch_bytes=max(max_bytes, 64 << 20),
    )


def unpack_caps(max_bytes: int) -> Caps:
    return Caps(max_bytes=max_bytes, max_members=MAX_MEMBERS, max_ratio=MAX_RATIO)


def read_confined(top: Path, relative: str, max_bytes: int) -> bytes:
    """A regular file below `top`, each component opened without following a
    link; InvalidArgument when it is missing, a link, or too big."""
    *dirs, leaf = [p for p in relative.split("/") if p]
    fd = _walk(top, dirs, relative)
    try:
        file_fd = _open(fd, leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, relative)
    finally:
        os.close(fd)
    with os.fdopen(file_fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file_fd).st_mode):
            raise InvalidArgument(f"{relative} in the source is not a regular file")
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidArgument(f"{relative} in the source is over {max_bytes} bytes")
    return data


def is_regular_file(top: Path, relative: str) -> bool:
    """Whether `relative` below `top` is a regular file reached through no link."""
    *dirs, leaf = [p for p in relative.split("/") if p]
    try:
        fd = _walk(top, dirs, relative)
    except InvalidArgument:
        return False
    try:
        info = os.stat(leaf, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return False
    finally:
        os.close(fd)
    return stat.S_ISREG(info.st_mode)


def _walk(top: Path, dirs: list[str], relative: str) -> int:
    fd = os.open(top, _DIR_FLAGS)
    try:
        for part in dirs:
            child = _open(fd, part, _DIR_FLAGS, relative)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open(dir_fd: int, name: str, flags: int, relative: str) -> int:
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        why = "through a link" if exc.errno in (errno.ELOOP, errno.ENOTDIR) else exc.strerror
        raise InvalidArgument(f"{relative} is not in the source ({why})") from exc
