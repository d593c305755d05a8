"""Preparing a runtime directory before `rnx runtime install` uploads it.

A runtime whose directory holds a hashed requirements.txt is built with no
network (`pip install --no-index --find-links /src/wheels`), so the wheels travel
with the upload. The directory ships only the requirements: the wheels are found
in a cache (`~/.cache/joblet/wheels/cp311-manylinux_<machine>`), and those missing
there are fetched by `pip download` first, with a progress line. With the cache
filled it works offline. A directory that already holds every wheel in its own
`wheels/` is uploaded as it is.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from joblet.cli.wheels import (
    PYTHON_TAG,
    Pin,
    RequirementsError,
    choose,
    machine_of,
    parse_requirements,
    pip_download_args,
)
from joblet.client.errors import CliError
from joblet.client.uploads import UploadEntry, directory_upload, read_file_entry

REQUIREMENTS = "requirements.txt"
WHEELS = "wheels"
_POLL_S = 0.25


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "joblet" / "wheels"


def _digests(directory: Path) -> dict[str, str]:
    """sha256 of each wheel in `directory` (none when it does not exist)."""
    found: dict[str, str] = {}
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.whl")):
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256()
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            found[path.name] = digest.hexdigest()
    return found


def _names(pins: Sequence[Pin]) -> str:
    return ", ".join(f"{p.name}=={p.version}" for p in pins)


def _download(
    requirements: Path, cache: Path, machine: str, pip: Sequence[str], err: TextIO
) -> None:
    """`pip download` into the cache, a progress line kept up to date meanwhile."""
    cache.mkdir(parents=True, exist_ok=True)
    argv = [*pip, "download", "--quiet", "--no-input", "--disable-pip-version-check"]
    argv += [
        "--require-hashes",
        *pip_download_args(machine),
        "-d",
        str(cache),
        "-r",
        str(requirements),
    ]
    start = time.monotonic()
    before = sum(p.stat().st_size for p in cache.glob("*.whl"))
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
        try:
            while proc.poll() is None:
                _progress(err, cache, before, start, final=False)
                time.sleep(_POLL_S)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
        _progress(err, cache, before, start, final=True)
        if proc.returncode != 0:
            output.seek(0)
            lines = output.read().decode(errors="replace").strip().splitlines()
            reason = next((ln for ln in reversed(lines) if ln.strip()), f"exit {proc.returncode}")
            raise CliError(f"fetching the wheels of {requirements}: pip download: {reason.strip()}")


def _progress(err: TextIO, cache: Path, before: int, start: float, *, final: bool) -> None:
    got = sum(p.stat().st_size for p in cache.glob("*.whl")) - before
    line = f"fetching wheels: {max(got, 0) / 1048576:.1f} MiB, {time.monotonic() - start:.0f}s"
    if final:
        err.write(("\r" if err.isatty() else "") + line + "\n")
    elif err.isatty():
        err.write("\r" + line)
    err.flush()


def _plain(directory: Path, *, skip_wheels: bool) -> list[UploadEntry]:
    """The directory's files, paths relative to it."""
    base = directory.resolve().name + "/"
    entries = []
    for entry in directory_upload(directory):
        path = entry.path.removeprefix(base)
        if entry.is_directory or (skip_wheels and path.startswith(WHEELS + "/")):
            continue
        entries.append(UploadEntry(path, entry.content, entry.mode))
    return entries


def prepare(
    directory: Path, err: TextIO, *, arch: str = "", cache: Path | None = None,
    pip: Sequence[str] | None = None,
) -> list[UploadEntry]:  # fmt: skip
    """The files to upload for the runtime in `directory`, paths relative to it:
    its own files, plus `wheels/` for its requirements.txt (fetched if need be).
    `arch` is the daemon's (Debian or uname name; default this machine's)."""
    requirements = directory / REQUIREMENTS
    if not requirements.is_file():
        return _plain(directory, skip_wheels=False)
    try:
        pins = parse_requirements(requirements.read_text())
        machine = machine_of(arch or platform.machine())
    except (RequirementsError, UnicodeDecodeError) as exc:
        raise CliError(f"{requirements}: {exc}") from exc
    _, missing = choose(pins, _digests(directory / WHEELS), machine)
    if not missing:
        return _plain(directory, skip_wheels=False)
    cache = cache or cache_root() / f"{PYTHON_TAG}-manylinux_{machine}"
    chosen, missing = choose(pins, _digests(cache), machine)
    if missing:
        err.write(
            f"{directory.name}: fetching {len(missing)} wheel(s) into {cache}: {_names(missing)}\n"
        )
        _download(requirements, cache, machine, pip or [sys.executable, "-m", "pip"], err)
        chosen, missing = choose(pins, _digests(cache), machine)
        if missing:
            raise CliError(f"{requirements}: no wheel with a listed hash for {_names(missing)}")
    wheels = [read_file_entry(cache / name, f"{WHEELS}/{name}") for name in sorted(chosen.values())]
    return _plain(directory, skip_wheels=True) + wheels
