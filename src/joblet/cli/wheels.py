"""Hashed requirement files and the wheels that satisfy them, for the daemon's
CPython 3.11 on manylinux x86_64 or aarch64. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PYTHON_VERSION = "3.11"
PYTHON_TAG = "cp311"
# Debian arch names (what the daemon reports) and uname's, to wheel machine tags
MACHINES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
# the glibc baselines of wheels a Debian 12 host (glibc 2.36) runs
_MANYLINUX = ("manylinux2014", "manylinux_2_17", "manylinux_2_28")

_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_WHEEL = re.compile(
    r"(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl"
)


class RequirementsError(ValueError):
    """A requirements file the preparation cannot use (unpinned or unhashed)."""


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503)
    version: str
    hashes: frozenset[str]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def machine_of(arch: str) -> str:
    try:
        return MACHINES[arch.lower()]
    except KeyError:
        raise RequirementsError(f"no wheels for the architecture {arch!r}") from None


def parse_requirements(text: str) -> list[Pin]:
    """`name==version --hash=sha256:...` lines (continued with `\\`); comments and
    blank lines skipped; anything else refused, naming its line."""
    pins: list[Pin] = []
    for number, line in _logical_lines(text):
        match = _PIN.match(line)
        rest = line[match.end() :].split() if match else []
        if match is None or any(not _HASH.fullmatch(word) for word in rest):
            raise RequirementsError(
                f"requirements.txt line {number}: expected NAME==VERSION --hash=sha256:HEX"
            )
        hashes = frozenset(_HASH.fullmatch(word).group(1) for word in rest)  # type: ignore[union-attr]
        if not hashes:
            raise RequirementsError(f"requirements.txt line {number}: {match.group(1)} has no hash")
        pins.append(Pin(canonical(match.group(1)), match.group(2), hashes))
    return pins


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()  # no '#' in a pin or a hash
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole:
            yield start, whole
    if pending.strip():
        yield start, pending.strip()


def fits(filename: str, pin: Pin, machine: str) -> bool:
    """Whether the wheel `filename` is `pin` for CPython 3.11 on manylinux `machine`."""
    m = _WHEEL.fullmatch(filename)
    if m is None or canonical(m["name"]) != pin.name or m["version"] != pin.version:
        return False
    pythons = set(m["py"].split("."))
    abis = set(m["abi"].split("."))
    platforms = m["plat"].split(".")
    python_ok = bool(pythons & {PYTHON_TAG, "py3"})
    abi_ok = bool(abis & {PYTHON_TAG, "abi3", "none"})
    platform_ok = any(
        p == "any" or (p.endswith("_" + machine) and p.startswith(_MANYLINUX)) for p in platforms
    )
    return python_ok and abi_ok and platform_ok


def choose(
    pins: Iterable[Pin], wheels: Mapping[str, str], machine: str
) -> tuple[dict[Pin, str], list[Pin]]:
    """For each pin, a wheel among `wheels` (file name -> sha256) that fits it and
    has one of its hashes; and the pins no wheel satisfies."""
    chosen: dict[Pin, str] = {}
    missing: list[Pin] = []
    for pin in pins:
        found = sorted(
            f for f, digest in wheels.items() if digest in pin.hashes and fits(f, pin, machine)
        )
        if found:
            chosen[pin] = found[0]
        else:
            missing.append(pin)
    return chosen, missing


def pip_download_args(machine: str) -> list[str]:
    """pip download's flags for the daemon's interpreter, whatever runs pip."""
    args = ["--only-binary=:all:", "--python-version", PYTHON_VERSION]
    args += ["--implementation", "cp", "--abi", PYTHON_TAG]
    for base in _MANYLINUX:
        args += ["--platform", f"{base}_{machine}"]
    return args
