"""The environment a job's command receives, and hiding secret values.

A job never inherits the daemon's environment. It gets this documented base:

    PATH    /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOME    /work
    LANG    C.UTF-8
    TMPDIR  /tmp
    JOB_ID  the job's id
    JOB_NAME the job's name (only when it has one)

then a runtime's environment (its `${VAR}` expanded from that base only),
then the request's `environment`, then its `secret_environment`, each
overriding what came before, except JOB_ID, which always tells the truth.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from joblet.jobs.model import JobSpec

MASK = "***"

BASE_ENVIRONMENT: Mapping[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/work",
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
}


_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_from(value: str, base: Mapping[str, str]) -> str:
    """`value` with each `${NAME}` replaced by base[NAME] ("" when unset).
    Only the base is consulted: a runtime cannot read the user's variables."""
    return _REFERENCE.sub(lambda m: base.get(m.group(1), ""), value)


def job_environment(
    spec: JobSpec,
    job_id: str,
    job_name: str,
    runtime_env: Sequence[tuple[str, str]] = (),
) -> dict[str, str]:
    """Exactly the environment the job's command is started with."""
    env = dict(BASE_ENVIRONMENT)
    if job_name:
        env["JOB_NAME"] = job_name
    base = dict(env)
    env.update((key, expand_from(value, base)) for key, value in runtime_env)
    env.update(spec.environment)
    env.update(spec.secret_environment)
    env["JOB_ID"] = job_id
    return env


def mask_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """The same keys with every value replaced by "***", for responses and output."""
    return dict.fromkeys(env, MASK)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of any secret value replaced by "***".

    Longer values go first so a secret containing another is hidden whole.
    Empty values are skipped: they occur everywhere and hide nothing."""
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
