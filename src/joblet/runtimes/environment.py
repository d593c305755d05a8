"""A runtime's environment over a job's: base < runtime < user < secrets.

A spec's values may name `${VAR}` of the job's documented base environment
only (PATH, HOME, ...), expanded from that base, never from the user's values:
what a runtime sets does not depend on who runs it, and a spec cannot read a
secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

REFERENCE = re.compile(r"\$\{([^}]*)\}")


def references(value: str) -> list[str]:
    """The names `${NAME}` in `value` refers to, in order."""
    return REFERENCE.findall(value)


def expand(value: str, base: Mapping[str, str]) -> str:
    """`value` with each `${NAME}` replaced by base[NAME] ("" when unset)."""
    return REFERENCE.sub(lambda m: base.get(m.group(1), ""), value)


def runtime_environment(
    base: Mapping[str, str], runtime: Iterable[tuple[str, str]]
) -> dict[str, str]:
    """`base` with the runtime's variables over it, each expanded from `base`."""
    env = dict(base)
    for key, value in runtime:
        env[key] = expand(value, base)
    return env


def merge_environment(
    base: Mapping[str, str],
    runtime: Iterable[tuple[str, str]],
    user: Mapping[str, str],
    secrets: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole order: base < runtime < user < secrets."""
    env = runtime_environment(base, runtime)
    env.update(user)
    env.update(secrets or {})
    return env
