"""The host driver's user-space files a GPU job gets read-only under
/usr/local/nvidia/{lib64,bin}: they must match the loaded kernel module, so
they are the host's own, never a copy in an image.

Which files: the driver's compute and utility sets (the groups NVIDIA's
container toolkit uses for NVIDIA_DRIVER_CAPABILITIES=compute,utility). Where:
the directories of `gpu.driverPaths`, or else ldconfig's cache. Each library
is bound under its soname (libcuda.so.1), from the real file its links end
at; a file that resolves outside the allowed prefixes is left out.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

RealPath = Callable[[str], str]
Exists = Callable[[str], bool]

JOB_DIR = "/usr/local/nvidia"
JOB_LIB = JOB_DIR + "/lib64"
JOB_BIN = JOB_DIR + "/bin"

# Library base names (before ".so"): utility (NVML, the config library) and
# compute (CUDA driver, PTX JIT, NVVM, OpenCL, the allocator...).
UTILITY_LIBS = ("libnvidia-ml", "libnvidia-cfg")
COMPUTE_LIBS = (
    "libcuda", "libcudadebugger", "libnvidia-ptxjitcompiler", "libnvidia-nvvm",
    "libnvidia-opencl", "libnvidia-gpucomp", "libnvidia-fatbinaryloader",
    "libnvidia-allocator", "libnvidia-compiler", "libnvidia-pkcs11",
    "libnvidia-pkcs11-openssl3",
)  # fmt: skip
LIBRARIES = UTILITY_LIBS + COMPUTE_LIBS
BINARIES = ("nvidia-smi", "nvidia-debugdump", "nvidia-cuda-mps-control", "nvidia-cuda-mps-server")

# Where the driver's files may live when found through ldconfig's cache.
DEFAULT_PREFIXES = (
    "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/usr/local/nvidia",
    "/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin", "/opt/nvidia",
)  # fmt: skip
BIN_DIRS = ("/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin")

_SONAME = re.compile(r"^(?P<base>lib[\w.+-]*?)\.so\.(?P<major>\d+)$")
_VERSIONED = re.compile(r"^(?P<base>lib[\w.+-]*?)\.so(\.\d+)*$")
_LDCONFIG_LINE = re.compile(r"^\s*(?P<name>\S+)\s+\((?P<tags>[^)]*)\)\s+=>\s+(?P<path>/\S+)\s*$")


@dataclass(frozen=True)
class DriverFile:
    source: str  # the host's real file
    target: str  # its path inside the job


def parse_ldconfig(text: str, arch: str = "x86-64") -> list[tuple[str, str]]:
    """(name, path) of each entry of `ldconfig -p` for `arch` (the tag
    ldconfig prints: "x86-64", "AArch64"); the first entry of a name wins,
    as the dynamic loader takes it."""
    seen: dict[str, str] = {}
    for line in text.splitlines():
        m = _LDCONFIG_LINE.match(line)
        if m is None:
            continue
        tags = [t.strip() for t in m["tags"].split(",")]
        if arch and not any(t == arch for t in tags):
            continue
        seen.setdefault(m["name"], m["path"])
    return list(seen.items())


def is_driver_library(name: str) -> bool:
    m = _VERSIONED.match(name)
    return m is not None and m["base"] in LIBRARIES


def within(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def select_libraries(
    entries: Iterable[tuple[str, str]], realpath: RealPath, prefixes: Sequence[str]
) -> list[DriverFile]:
    """The driver's libraries among (name, host path) entries: each soname
    (lib*.so.N) bound from the real file it resolves to; a library with no
    soname entry by its own name. Paths resolving outside `prefixes` are
    refused (logged)."""
    chosen: dict[str, DriverFile] = {}
    bases_with_soname: set[str] = set()
    plain: list[tuple[str, str]] = []
    for name, path in entries:
        if not is_driver_library(name):
            continue
        m = _SONAME.match(name)
        if m is None:
            plain.append((name, path))
            continue
        bases_with_soname.add(m["base"])
        _add(chosen, name, path, realpath, prefixes)
    for name, path in plain:
        m = _VERSIONED.match(name)
        if m is not None and m["base"] not in bases_with_soname and name != m["base"] + ".so":
            _add(chosen, name, path, realpath, prefixes)
    return sorted(chosen.values(), key=lambda f: f.target)


def select_binaries(
    dirs: Sequence[str], exists: Exists, realpath: RealPath, prefixes: Sequence[str]
) -> list[DriverFile]:
    chosen: dict[str, DriverFile] = {}
    for name in BINARIES:
        for d in dirs:
            path = os.path.join(d, name)
            if name not in chosen and exists(path):
                real = realpath(path)
                if within(real, prefixes):
                    chosen[name] = DriverFile(real, f"{JOB_BIN}/{name}")
                else:
                    log.warning("GPU driver file %s resolves outside %s: left out", path, prefixes)
    return list(chosen.values())


def _add(
    chosen: dict[str, DriverFile], name: str, path: str, realpath: RealPath,
    prefixes: Sequence[str],
) -> None:  # fmt: skip
    if name in chosen:
        return
    real = realpath(path)
    if not within(real, prefixes):
        log.warning("GPU driver file %s resolves to %s, outside %s: left out", path, real, prefixes)
        return
    chosen[name] = DriverFile(real, f"{JOB_LIB}/{name}")


def find_driver_files(driver_paths: Sequence[str] = ()) -> tuple[DriverFile, ...]:
    """The files a GPU job gets: from `driver_paths` (libraries and binaries
    in those directories, which are then the only allowed prefixes) or from
    ldconfig's cache and the usual bin directories."""
    realpath, exists = os.path.realpath, os.path.isfile
    if driver_paths:
        prefixes = tuple(os.path.realpath(d) for d in driver_paths)
        entries = [(name, os.path.join(d, name)) for d in driver_paths for name in _listdir(d)]
        libs = select_libraries(entries, realpath, prefixes)
        return tuple(libs + select_binaries(driver_paths, exists, realpath, prefixes))
    text = _ldconfig_cache()
    arch = {"x86_64": "x86-64", "aarch64": "AArch64"}.get(os.uname().machine, "")
    libs = select_libraries(parse_ldconfig(text, arch), realpath, DEFAULT_PREFIXES)
    return tuple(libs + select_binaries(BIN_DIRS, exists, realpath, DEFAULT_PREFIXES))


def _listdir(d: str) -> list[str]:
    try:
        return sorted(os.listdir(d))
    except OSError as exc:
        log.warning("gpu.driverPaths: %s cannot be read: %s", d, exc)
        return []


def _ldconfig_cache() -> str:
    for exe in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        try:
            done = subprocess.run(
                [exe, "-p"], check=False, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return done.stdout
    log.warning("GPU driver files: ldconfig's cache cannot be read; GPU jobs get none")
    return ""


def driver_env(env: dict[str, str], files: Sequence[object]) -> dict[str, str]:
    """`env` with /usr/local/nvidia/lib64 first in LD_LIBRARY_PATH and
    /usr/local/nvidia/bin last in PATH (the job's own tools win there)."""
    if not files:
        return env
    out = dict(env)
    libs = out.get("LD_LIBRARY_PATH", "")
    out["LD_LIBRARY_PATH"] = JOB_LIB + (":" + libs if libs else "")
    path = out.get("PATH", "") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    out["PATH"] = path + ":" + JOB_BIN
    return out
