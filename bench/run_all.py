"""Run every benchmark and print a summary.

    .venv/bin/python bench/run_all.py [--quick] [NAME ...]

Each benchmark runs as its own process (its own daemon, torn down after);
its last `BENCH-RESULT {json}` line feeds the summary. The benchmarks of
issues 2 and 3 run first, then any other bench/*.py script (other issues').
Exits 1 if a benchmark crashed; a missed target is reported, not an error.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PREFIX = "BENCH-RESULT "
BENCHMARKS = (
    "job_start",
    "launcher_start",
    "submit_throughput",
    "log_throughput",
    "log_latency",
    "daemon_rss",
    "job_memory",
)
NOT_BENCHMARKS = ("common", "metrics_day", "netbench", "run_all")
TIMEOUT_S = 900


def discover() -> tuple[str, ...]:
    """The known benchmarks in order, then every other script in bench/."""
    others = sorted(
        path.stem
        for path in HERE.glob("*.py")
        if path.stem not in BENCHMARKS and path.stem not in NOT_BENCHMARKS
    )
    return (*BENCHMARKS, *others)


Outcome = tuple[dict[str, Any] | None, float, bool]  # result line, seconds, exited 0


def run_one(name: str, quick: bool) -> Outcome:
    argv = [sys.executable, str(HERE / f"{name}.py"), *(["--quick"] if quick else [])]
    print(f"--- {name}", flush=True)
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        print(f"{name}: timed out after {TIMEOUT_S}s", flush=True)
        return None, time.monotonic() - start, False
    elapsed = time.monotonic() - start
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(PREFIX):
            result = json.loads(line.removeprefix(PREFIX))
        else:
            print(line)
    if proc.returncode != 0:
        print(f"{name}: exited {proc.returncode}\n{proc.stderr[-3000:]}", flush=True)
    return result, elapsed, proc.returncode == 0


def summary_lines(name: str, outcome: Outcome) -> list[str]:
    result, elapsed, ok = outcome
    if not ok:
        return [f"{name:<18} CRASHED ({elapsed:.0f} s)"]
    if result is None:
        return [f"{name:<18} ran, no summary line: see its output above ({elapsed:.0f} s)"]
    lines = [f"{name:<18} ({elapsed:.0f} s)"]
    for label, ok in result["passed"].items():
        lines.append(f"  {'PASS' if ok else 'FAIL'}  {label}: {result['targets'][label]}")
    figures = {**result["figures"], **{f"baseline {k}": v for k, v in result["baselines"].items()}}
    lines += [f"        {key} = {value:.3f}" for key, value in figures.items()]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short versions of each benchmark")
    known = discover()
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(known))
    args = parser.parse_args()
    unknown = set(args.names) - set(known)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(known)}")
    outcomes = {name: run_one(name, args.quick) for name in args.names or known}
    print("\n==== summary" + (" (quick)" if args.quick else "") + " ====")
    for name, outcome in outcomes.items():
        print("\n".join(summary_lines(name, outcome)))
    return 0 if all(ok for _, _, ok in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
