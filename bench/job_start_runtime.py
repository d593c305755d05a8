"""Job start latency with a runtime and without, in the same run.

    .venv/bin/python bench/job_start_runtime.py [--quick]

One daemon with a small hand-made runtime (a tree of a shell script, an
extra mount over /usr/share/doc and a PATH entry), served through the
directory resolver of tests/integration/runtime_daemon.py. Timed as
bench/job_start.py times a job: RunJob sent -> first output byte of
`echo hi`, in alternating batches of jobs with `runtime` and without, on
network none (loopback only) and the default (bridge). The runtime is warm:
used since the daemon started. Targets: with runtime p50 <= without
p50 + 2 ms, p99 <= without p99 + 5 ms.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from common import Report, describe_ms, p50, p99, parse_args, running_daemon

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

BATCHES = 10
WARMUP = 5
TESTS_DIR = str(Path(__file__).resolve().parents[1] / "tests")


def make_runtime(top: Path) -> None:
    tree = top / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "share").mkdir()
    (tree / "bin" / "hello").write_text("#!/bin/sh\necho hi\n")
    (tree / "bin" / "hello").chmod(0o755)
    spec = {
        "build_id": "bench",
        "tree": str(tree),
        "mounts": [[str(tree / "share"), "/usr/share/doc"]],
        "environment": [["PATH", "/opt/runtime/bin:${PATH}"]],
    }
    (top / "benchrt").mkdir()
    (top / "benchrt" / "runtime.json").write_text(json.dumps(spec))


def one_start(stub: pb_grpc.JobServiceStub, network: str, runtime: str) -> float:
    start = time.perf_counter()
    job = stub.RunJob(
        pb.RunJobRequest(command="echo", args=["hi"], network=network, runtime=runtime)
    )
    chunks = stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid))
    first = next(chunks).payload
    elapsed = time.perf_counter() - start
    output = first + b"".join(c.payload for c in chunks)
    if output != b"hi\n":
        raise AssertionError(f"job printed {output!r}")
    stub.DeleteJob(pb.DeleteJobReq(uuid=job.jobUuid))
    return elapsed


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 50 if args.quick else 300
    report = Report("job_start_runtime", args.quick)
    top = Path(tempfile.mkdtemp(prefix="joblet-bench-runtimes-"))
    samples: dict[tuple[str, str], list[float]] = {}
    try:
        make_runtime(top)
        pythonpath = os.pathsep.join(p for p in (TESTS_DIR, os.environ.get("PYTHONPATH")) if p)
        env = {"JOBLET_TEST_RUNTIMES": str(top), "PYTHONPATH": pythonpath}
        with running_daemon(module="integration.runtime_daemon", env=env) as daemon:
            stub = daemon.jobs()
            for network in ("none", ""):
                for runtime in ("", "benchrt"):
                    for _ in range(WARMUP):
                        one_start(stub, network, runtime)
            for batch in range(BATCHES):
                order = ("", "benchrt") if batch % 2 else ("benchrt", "")
                for network in ("none", ""):
                    for runtime in order:
                        key = (runtime or "plain", network or "bridge")
                        for _ in range(runs // BATCHES):
                            samples.setdefault(key, []).append(one_start(stub, network, runtime))
    finally:
        shutil.rmtree(top, ignore_errors=True)
    for (runtime, network), values in sorted(samples.items()):
        print(f"{runtime:8} {network:6}", describe_ms(values))
        report.figures[f"{runtime}_{network}_p50_ms"] = p50(values) * 1e3
        report.figures[f"{runtime}_{network}_p99_ms"] = p99(values) * 1e3
    for network in ("bridge", "none"):
        with_rt, plain = samples[("benchrt", network)], samples[("plain", network)]
        d50, d99 = p50(with_rt) - p50(plain), p99(with_rt) - p99(plain)
        report.figures[f"{network}_p50_delta_ms"] = d50 * 1e3
        report.figures[f"{network}_p99_delta_ms"] = d99 * 1e3
        report.check(f"{network} p50", d50 <= 0.002, "runtime <= plain + 2 ms")
        report.check(f"{network} p99", d99 <= 0.005, "runtime <= plain + 5 ms")
    report.emit()


if __name__ == "__main__":
    main()
