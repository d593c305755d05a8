"""Job start latency with and without a user namespace, in the same run.

    .venv/bin/python bench/job_start_userns.py [--quick]

Two daemons side by side, `joblet.userNamespace: off` and `on`, each timed
as bench/job_start.py times one (RunJob sent -> first output byte of
`echo hi`), in alternating batches so both see the same host load (the
host's load average is printed: compare runs on a quiet host only). Target:
on p50 <= off p50 + 1 ms, for the default network (bridge) and for none.
"""

from __future__ import annotations

import contextlib

from common import Report, describe_ms, p50, p99, parse_args, running_daemon
from job_start import measure

BATCHES = 10


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 50 if args.quick else 200
    report = Report("job_start_userns", args.quick)
    samples: dict[tuple[str, str], list[float]] = {}
    with contextlib.ExitStack() as stack:
        daemons = {mode: stack.enter_context(running_daemon(userNamespace=mode))
                   for mode in ("off", "on")}  # fmt: skip
        for batch in range(BATCHES):
            # Each daemon goes first in every other batch: a job's start can
            # be slowed by the previous batch's jobs still ending.
            order = list(daemons.items())[:: 1 if batch % 2 else -1]
            for network in ("", "none"):
                for mode, daemon in order:
                    _, starts = measure(daemon.jobs(), runs // BATCHES, network)
                    samples.setdefault((mode, network or "bridge"), []).extend(starts)
    for (mode, network), values in sorted(samples.items()):
        print(f"userNamespace {mode:3} {network:6}", describe_ms(values))
        report.figures[f"{mode}_{network}_p50_ms"] = p50(values) * 1e3
        report.figures[f"{mode}_{network}_p99_ms"] = p99(values) * 1e3
    for network in ("bridge", "none"):
        delta = p50(samples[("on", network)]) - p50(samples[("off", network)])
        report.figures[f"{network}_p50_delta_ms"] = delta * 1e3
        report.check(f"{network} p50", delta <= 0.001, "on <= off + 1 ms")
    report.emit()


if __name__ == "__main__":
    main()
