#!/usr/bin/env python3
"""Mutation run: turn each protection off in turn and see a test fail.

Each mutation replaces one exact piece of text in one source file (found
exactly once: a list that no longer matches the code fails loudly, before
anything runs) and runs a small selection of tests against the mutated copy.
CAUGHT: some test failed. MISSED: all passed, so nothing tests that
protection (EQUIVALENT when the list says why nothing can: another layer
stops the same thing in every case). The repository itself is never changed: src/, tests/ and
pyproject.toml are copied once to a scratch directory and each mutation is
applied there and undone after its run.

The tests run with this repository's interpreter and PYTHONPATH set to the
scratch copy's src/, which comes before the editable install's path: the
daemons, helpers and launchers the tests start inherit it (the daemon passes
its sys.path to the launcher), so they run the mutated code too. The run
checks that before it starts.

    .venv/bin/python scripts/mutation_run.py                 # all; table into docs/SECURITY.md
    .venv/bin/python scripts/mutation_run.py --list
    .venv/bin/python scripts/mutation_run.py --only seccomp-bpf caps-sys-admin
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutations import MUTATIONS, Mutation

REPO = Path(__file__).resolve().parent.parent
COPIED = ("src", "tests", "pyproject.toml")
SECURITY_MD = REPO / "docs" / "SECURITY.md"
START_MARK, END_MARK = "<!-- mutation-run:start -->", "<!-- mutation-run:end -->"


class MutationListError(Exception):
    """A mutation's text is not found exactly once: the list is out of date."""


@dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    result: str  # CAUGHT, MISSED or ERROR
    summary: str  # pytest's last line
    seconds: float


def check_mutations(root: Path, mutations: Sequence[Mutation]) -> None:
    """Every mutation's old text occurs exactly once in its file; names are unique."""
    problems = []
    seen: set[str] = set()
    for m in mutations:
        if m.name in seen:
            problems.append(f"{m.name}: name used twice")
        seen.add(m.name)
        path = root / m.path
        if not path.is_file():
            problems.append(f"{m.name}: {m.path} does not exist")
            continue
        count = path.read_text().count(m.old)
        if count != 1:
            problems.append(f"{m.name}: old text found {count} times in {m.path}")
        for test in m.tests:
            if not (root / test.split("::")[0]).exists():
                problems.append(f"{m.name}: test {test} does not exist")
    if problems:
        raise MutationListError("\n".join(problems))


def make_scratch(parent: Path | None) -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="joblet-mutation-", dir=parent))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, scratch / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(src, scratch / name)
    return scratch


def test_env(scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(scratch / "src")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_imports_scratch(scratch: Path) -> None:
    """A process started the way the tests start daemons imports the copy."""
    code = (
        "import subprocess, sys\n"
        "out = subprocess.run([sys.executable, '-c', 'import joblet; print(joblet.__file__)'],"
        " capture_output=True, text=True, check=True).stdout\n"
        "print(out.strip())\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=scratch, env=test_env(scratch),
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not found.startswith(str(scratch / "src")):
        raise SystemExit(f"a spawned process imports {found}, not the scratch copy")


def run_tests(scratch: Path, tests: Sequence[str], timeout: float) -> tuple[int, str]:
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", *tests]
    try:
        proc = subprocess.run(
            argv, cwd=scratch, env=test_env(scratch), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:.0f} s"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1].strip("= ") if lines else proc.stderr.strip()[-200:]
    return proc.returncode, summary


def classify(returncode: int) -> str:
    """pytest's exit code: 1 = tests failed, 0 = all passed, else it could not run."""
    return {0: "MISSED", 1: "CAUGHT"}.get(returncode, "ERROR")


def run_one(scratch: Path, m: Mutation, timeout: float) -> Outcome:
    path = scratch / m.path
    original = path.read_text()
    if original.count(m.old) != 1:
        raise MutationListError(f"{m.name}: old text not found once in {m.path}")
    start = time.monotonic()
    path.write_text(original.replace(m.old, m.new))
    try:
        code, summary = run_tests(scratch, m.tests, timeout)
    finally:
        path.write_text(original)
    result = classify(code)
    if result == "MISSED" and m.equivalent:
        result = "EQUIVALENT"
    return Outcome(m, result, summary, time.monotonic() - start)


def baseline(scratch: Path, mutations: Sequence[Mutation], timeout: float) -> dict[str, str]:
    """Each distinct selection run unmutated: a CAUGHT only counts if it passes."""
    broken: dict[str, str] = {}
    for tests in sorted({m.tests for m in mutations}):
        code, summary = run_tests(scratch, tests, timeout)
        print(f"baseline {' '.join(tests)}: {summary}", flush=True)
        if code != 0:
            broken[" ".join(tests)] = summary
    return broken


def replace_section(path: Path, report: str) -> None:
    """Put `report` between the mutation-run markers of `path` (the last full run)."""
    text = path.read_text()
    start, end = text.find(START_MARK), text.find(END_MARK)
    if start < 0 or end < start:
        raise SystemExit(f"{path} has no {START_MARK} ... {END_MARK} section")
    path.write_text(text[: start + len(START_MARK)] + "\n" + report + text[end:])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(outcomes: Sequence[Outcome]) -> str:
    rows = [
        "| mutation | protection | tests run | result |",
        "|---|---|---|---|",
    ]
    for o in outcomes:
        tests = "<br>".join(f"`{t}`" for t in o.mutation.tests)
        result = f"**{o.result}** ({_cell(o.summary)}, {o.seconds:.0f} s)"
        if o.result == "EQUIVALENT":
            result += f": {_cell(o.mutation.equivalent)}"
        rows.append(
            f"| `{o.mutation.name}` | {_cell(o.mutation.protection)} | {tests} | {result} |"
        )
    return "\n".join(rows) + "\n"


def select(names: Sequence[str]) -> list[Mutation]:
    if not names:
        return list(MUTATIONS)
    by_name = {m.name: m for m in MUTATIONS}
    unknown = [n for n in names if n not in by_name and not any(
        re.fullmatch(n.replace("*", ".*"), k) for k in by_name)]  # fmt: skip
    if unknown:
        raise SystemExit(f"unknown mutation(s): {', '.join(unknown)} (see --list)")
    return [m for m in MUTATIONS if any(re.fullmatch(n.replace("*", ".*"), m.name) for n in names)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=[], help="mutation names (* wildcards)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per selection")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated runs")
    parser.add_argument("--scratch-parent", type=Path, default=None)
    args = parser.parse_args(argv)
    chosen = select(args.only)
    try:
        check_mutations(REPO, MUTATIONS)
    except MutationListError as exc:
        print(f"mutation list out of date:\n{exc}", file=sys.stderr)
        return 2
    if args.list:
        for m in chosen:
            print(f"{m.name:28} {m.path}  [{' '.join(m.tests)}]")
        return 0
    scratch = make_scratch(args.scratch_parent)
    try:
        check_imports_scratch(scratch)
        broken = {} if args.no_baseline else baseline(scratch, chosen, args.timeout)
        outcomes = []
        for m in chosen:
            if " ".join(m.tests) in broken:
                outcome = Outcome(m, "ERROR", "fails unmutated: " + broken[" ".join(m.tests)], 0)
            else:
                outcome = run_one(scratch, m, args.timeout)
            print(f"{outcome.result:6} {m.name}: {outcome.summary}", flush=True)
            outcomes.append(outcome)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    table = render_table(outcomes)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python scripts/mutation_run.py" + (
        f" --only {' '.join(args.only)}" if args.only else ""
    )
    report = f"Mutation run of {stamp}: `{command}`\n\n{table}"
    if args.out is not None:
        args.out.write_text(report)
    if not args.only:
        replace_section(SECURITY_MD, report)
    print(table)
    missed = [o for o in outcomes if o.result not in ("CAUGHT", "EQUIVALENT")]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
