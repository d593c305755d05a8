"""The shared part of a job's root: what building it costs per job.

    .venv/bin/python bench/root_build.py [--count N] [--rounds R] [--ab OTHER/src]

Each sample forks a child whose own child is pid 1 of new pid and mount
namespaces, as a job's init is; that one runs the compiled shared root
program (the default allowed mounts, /proc with its masks and read-only
entries, /dev, /tmp; mountprog.compiled_base) and exits. Their CPU (wait4's
rusage, namespace teardown included) and the wall time from fork to reap are
recorded, and the time the init spent in the program itself. The baseline
is the same pair of processes that only take the namespaces. With
`--ab SRC` the same measurement runs with another checkout's `src`, rounds
alternating which tree goes first. Medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def measure(count: int, build: bool) -> dict[str, float]:
    from joblet.config.model import DEFAULT_ALLOWED_MOUNTS
    from joblet.isolation import libc, mountprog, rootfs

    root = tempfile.mkdtemp(prefix="joblet-rootbench-")
    inputs = rootfs.RootInputs(
        root=root,
        allowed=rootfs.probe_host(DEFAULT_ALLOWED_MOUNTS),
        workspace="/nonexistent",
        etc_files={},
        tmp_size_bytes=64 << 20,
    )
    program = mountprog.compiled_base(rootfs.base_key(inputs))
    cpu: list[float] = []
    wall: list[float] = []
    run_s: list[float] = []
    try:
        for _ in range(count):
            r, w = os.pipe()
            start = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                # As a job's init: pid 1 of new pid and mount namespaces (its
                # /proc then lists its own pids only); reaped with its CPU.
                code = 1
                try:
                    libc.unshare(libc.CLONE_NEWNS | libc.CLONE_NEWPID)
                    init = os.fork()
                    if init == 0:
                        try:
                            began = time.perf_counter()
                            if build:
                                mountprog.run(program, os.fsencode(root))
                            os.write(w, repr(time.perf_counter() - began).encode())
                        except BaseException:
                            os._exit(1)
                        os._exit(0)
                    code = os.waitstatus_to_exitcode(os.waitpid(init, 0)[1])
                finally:
                    os._exit(code)
            os.close(w)
            with os.fdopen(r, "rb") as f:
                taken = f.read()
            _, status, usage = os.wait4(pid, 0)
            wall.append(time.perf_counter() - start)
            run_s.append(float(taken or b"nan"))
            if os.waitstatus_to_exitcode(status):
                raise SystemExit("the root build failed")
            cpu.append(usage.ru_utime + usage.ru_stime)
    finally:
        os.rmdir(root)
    steps = len(program)
    return {"cpu_ms": statistics.median(cpu) * 1e3, "wall_ms": statistics.median(wall) * 1e3,
            "run_ms": statistics.median(run_s) * 1e3, "steps": steps}  # fmt: skip


def run_tree(src: str, count: int, build: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    argv = [sys.executable, __file__, "--child", str(count)] + ([] if build else ["--bare"])
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--ab", default="")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, not args.bare)))
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    trees = {"this": here, **({"ab": args.ab} if args.ab else {})}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in [*trees, "bare"]}
    print(f"load at start: {os.getloadavg()[0]:.1f}")
    for round_ in range(args.rounds):
        names = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for name in names:
            results[name].append(run_tree(trees[name], args.count, True))
        results["bare"].append(run_tree(here, args.count, False))
    print(f"load at end: {os.getloadavg()[0]:.1f}")
    medians = {}
    for name, runs in results.items():
        cpu = statistics.median(r["cpu_ms"] for r in runs)
        wall = statistics.median(r["wall_ms"] for r in runs)
        run = statistics.median(r["run_ms"] for r in runs)
        medians[name] = cpu
        steps = int(runs[0]["steps"]) if name != "bare" else 0
        print(f"{name:5}: CPU {cpu:.2f} ms, wall {wall:.2f} ms per root, of which the program"
              f" {run:.2f} ms ({steps} steps)")  # fmt: skip
    if "ab" in medians:
        print(f"CPU ratio this/ab: {medians['this'] / medians['ab']:.2f}")


if __name__ == "__main__":
    main()
