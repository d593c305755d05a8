"""The one grammar for naming a runtime, in RunJob, workflows, every RPC and rnx.

    NAME                               python-3.11, openjdk-17, my.tools
    LANG:VERSION[-VARIANT...][@ARCH]   python:3.11-ml@amd64 -> python-3.11-ml

Either form normalizes to a name matching `NAME_PATTERN`; that allowlist is
checked before a name is ever joined to a path, so `../x`, `a/b` or a NUL byte
never reach the file system. Languages are an open set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from joblet.errors import InvalidArgument

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
NAME_RULE = "1-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
_PART = re.compile(r"[a-z0-9][a-z0-9._]*")
_LANGUAGE = re.compile(r"[a-z][a-z0-9_]*")
_MAX_REFERENCE = 256

# Kernel machine names to the names specs use (Debian's and Go's).
ARCH_ALIASES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "armhf",
    "armhf": "armhf",
    "i686": "i386",
    "i386": "i386",
    "ppc64le": "ppc64el",
    "ppc64el": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


@dataclass(frozen=True)
class RuntimeReference:
    """A parsed reference: `name` is what the store is keyed by."""

    name: str
    language: str = ""
    version: str = ""
    variants: tuple[str, ...] = ()
    architecture: str = ""


def normalize_arch(machine: str) -> str:
    """`uname -m` or a spec's architecture -> its canonical name ("" if unknown)."""
    return ARCH_ALIASES.get(machine.strip().lower(), "")


def check_name(name: str) -> str:
    """`name` when it matches the allowlist; InvalidArgument otherwise."""
    if not name:
        raise InvalidArgument("runtime name is empty")
    if NAME_PATTERN.fullmatch(name) is None or name in (".", "..") or ".." in name:
        raise InvalidArgument(f"invalid runtime name {name[:80]!r}: use {NAME_RULE}")
    return name


def parse_reference(text: str) -> RuntimeReference:
    """Parse either form; InvalidArgument names what is wrong."""
    if len(text) > _MAX_REFERENCE:
        raise InvalidArgument(f"runtime reference is longer than {_MAX_REFERENCE} characters")
    if ":" not in text and "@" not in text:
        return _split_name(check_name(text))
    head, arch = text, ""
    if "@" in text:
        head, _, raw_arch = text.partition("@")
        arch = normalize_arch(raw_arch)
        if not arch:
            raise InvalidArgument(f"unknown architecture {raw_arch[:40]!r} in runtime reference")
    if ":" not in head:
        raise InvalidArgument(f"invalid runtime reference {text[:80]!r}: use LANG:VERSION[@ARCH]")
    language, _, rest = head.partition(":")
    if _LANGUAGE.fullmatch(language) is None:
        raise InvalidArgument(f"invalid language {language[:40]!r} in runtime reference")
    version, *variants = rest.split("-")
    for part in (version, *variants):
        if _PART.fullmatch(part) is None:
            raise InvalidArgument(
                f"invalid version or variant {part[:40]!r} in runtime reference {text[:80]!r}"
            )
    name = check_name("-".join((language, version, *variants)))
    return RuntimeReference(name, language, version, tuple(variants), arch)


def normalize(text: str) -> str:
    """The store name a reference stands for."""
    return parse_reference(text).name


def _split_name(name: str) -> RuntimeReference:
    """A plain name; where it reads LANG-VERSION[-VARIANT...] its parts are kept."""
    language, sep, rest = name.partition("-")
    if not sep or not rest[:1].isdigit() or _LANGUAGE.fullmatch(language) is None:
        return RuntimeReference(name)
    version, *variants = rest.split("-")
    if not all(variants):
        return RuntimeReference(name)
    return RuntimeReference(name, language, version, tuple(variants))
