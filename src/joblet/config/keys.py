"""Unknown keys in joblet-config.yml: every one of them, each with the key's
path and the known key it most looks like. Pure: a mapping in, lines out.

A typo must not pass as "not set": `maxConcurentJobs: 2` would run without
a limit. Each section's known keys live beside the code that reads them (the
feature config modules); the whole file's are put together in the loader.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

# A section's keys: a key maps to its own section's keys (a mapping nested in
# the file) or to None (a value). A key whose value may be a mapping or a
# scalar (state.redis.tls: true) is checked only when it is a mapping.
Schema = Mapping[str, "Schema | None"]


def unknown_keys(raw: Mapping[Any, Any], schema: Schema, path: str = "") -> list[str]:
    """One line per key of `raw` that `schema` does not know, at any depth, in
    the file's order: "joblet.maxConcurentJobs: unknown key (did you mean
    maxConcurrentJobs?)"."""
    problems: list[str] = []
    for key, value in raw.items():
        name = str(key)
        where = f"{path}.{name}" if path else name
        if name not in schema:
            what = "unknown key" if path else "unknown section"
            problems.append(f"{where}: {what} ({suggest(name, schema)})")
            continue
        nested = schema[name]
        if nested is not None and isinstance(value, Mapping):
            problems.extend(unknown_keys(value, nested, where))
    return problems


def suggest(name: str, known: Mapping[str, object]) -> str:
    """ "did you mean X?" for the known key closest to `name` (case aside),
    else the list of known keys."""
    by_lower = {key.lower(): key for key in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    if close:
        return f"did you mean {by_lower[close[0]]}?"
    return "known: " + ", ".join(sorted(known)) if known else "no keys are known here"
