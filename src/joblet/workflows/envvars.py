"""Workflow environment variables: secret-looking names and `${VAR}` expansion.

A workflow's `environment` and `secret_environment` are defaults for every
job, and a job's own values win. Names such as `DB_PASSWORD` stay secret even
under `environment` (files written for the reference expect that), and so
does any value built from a secret with `${VAR}`, so expansion never moves a
secret into the visible environment. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_SECRET_NAME = re.compile(r"SECRET_.*|.*_(?:TOKEN|KEY|PASSWORD|SECRET)", re.IGNORECASE)
# `${NAME}` only: a bare `$NAME` or `${#NAME}` is left for the job's shell.
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def is_secret_name(key: str) -> bool:
    return _SECRET_NAME.fullmatch(key) is not None


@dataclass(frozen=True)
class Variable:
    value: str
    secret: bool


def expand(value: str, defined: Mapping[str, Variable]) -> tuple[str, bool, list[str]]:
    """`value` with each `${NAME}` replaced by the value defined before it;
    whether a secret went into it; the names that were not defined."""
    missing: list[str] = []
    secret = False

    def replace(match: re.Match[str]) -> str:
        nonlocal secret
        found = defined.get(match.group(1))
        if found is None:
            missing.append(match.group(1))
            return match.group(0)
        secret = secret or found.secret
        return found.value

    return _REFERENCE.sub(replace, value), secret, missing


def split(defined: Mapping[str, Variable]) -> tuple[dict[str, str], dict[str, str]]:
    """(environment, secret_environment) of the final variables."""
    visible = {k: v.value for k, v in defined.items() if not v.secret}
    hidden = {k: v.value for k, v in defined.items() if v.secret}
    return visible, hidden
