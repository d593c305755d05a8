"""Job start latency: RunJob sent -> first output byte received by a follower.

    .venv/bin/python bench/job_start.py [--quick]

For `echo hi`, sequentially: RunJob, then GetJobLogs on the same mTLS
channel; the clock stops at the first DataChunk. Baselines from this same
process: `unshare --pid --fork --mount-proc --uts --ipc --mount echo hi` and a
bare fork+exec of echo, each timed from spawn to the first byte on a pipe.
Two series: the node's default network (bridge: a veth, an address, NAT) and
`network=none` (loopback only). A third baseline is the naive way to give such a
namespace a bridged veth: the same `unshare` plus `--net`, wired by running `ip`
once per step (create the pair, move one end, attach, address, up, route).
Targets: none p50 <= 15 ms, p99 <= 50 ms; bridge p50 <= none p50 +
5 ms, bridge p99 <= 60 ms.
"""

from __future__ import annotations

import os
import subprocess
import time

from common import (
    Report,
    describe_ms,
    p50,
    p99,
    parse_args,
    running_daemon,
    time_first_byte,
    unshare_argv,
)

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

WARMUP = 5
NAIVE_BRIDGE = "jnaivebr0"
NAIVE_GATEWAY = "10.254.0.1"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def _wait_own_netns(pid: int) -> None:
    """Until `unshare` has made its network namespace: a veth moved to the
    pid before that lands in ours (seen on a loaded host)."""
    ours = os.readlink("/proc/self/ns/net")
    while os.readlink(f"/proc/{pid}/ns/net") == ours:
        time.sleep(0.0002)


def naive_bridge_starts(runs: int) -> list[float]:
    """`unshare` of the job namespaces plus net, its veth wired by `ip` calls,
    spawn -> first byte of `echo hi` once the network is up.

    Runs in the bench's own network namespace (common.enter_private_netns), so
    the bridge and veths never touch the host."""
    _ip("link", "add", NAIVE_BRIDGE, "type", "bridge")
    _ip("addr", "add", f"{NAIVE_GATEWAY}/24", "dev", NAIVE_BRIDGE)
    _ip("link", "set", NAIVE_BRIDGE, "up")
    samples = []
    try:
        for i in range(runs):
            address, host_end = f"10.254.0.{2 + i % 250}", f"jnv{i}"
            start = time.perf_counter()
            proc = subprocess.Popen(
                unshare_argv("sh", "-c", "read go; echo hi", extra_ns=["--net"]),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert proc.stdin is not None and proc.stdout is not None
            inside = ["nsenter", f"--net=/proc/{proc.pid}/ns/net", "ip"]
            _wait_own_netns(proc.pid)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0")
            _ip("link", "set", "eth0", "netns", str(proc.pid))
            _ip("link", "set", host_end, "master", NAIVE_BRIDGE, "up")
            subprocess.run([*inside, "addr", "add", f"{address}/24", "dev", "eth0"], check=True)
            subprocess.run([*inside, "link", "set", "eth0", "up"], check=True)
            subprocess.run([*inside, "route", "add", "default", "via", NAIVE_GATEWAY], check=True)
            proc.stdin.write(b"go\n")
            proc.stdin.close()
            proc.stdout.read(1)
            samples.append(time.perf_counter() - start)
            proc.stdout.read()
            proc.wait()  # the namespace goes with it, and the veth pair with that
    finally:
        _ip("link", "del", NAIVE_BRIDGE)
    return samples


def one_start(stub: pb_grpc.JobServiceStub, network: str) -> tuple[float, float, bytes]:
    """Seconds from RunJob to its answer and to the first chunk; the output."""
    start = time.perf_counter()
    job = stub.RunJob(pb.RunJobRequest(command="echo", args=["hi"], network=network))
    answered = time.perf_counter() - start
    chunks = stub.GetJobLogs(pb.GetJobLogsReq(uuid=job.jobUuid))
    first = next(chunks).payload
    elapsed = time.perf_counter() - start
    rest = b"".join(c.payload for c in chunks)  # the stream ends with the job
    stub.DeleteJob(pb.DeleteJobReq(uuid=job.jobUuid))
    return answered, elapsed, first + rest


def measure(
    stub: pb_grpc.JobServiceStub, runs: int, network: str = ""
) -> tuple[list[float], list[float]]:
    """(RunJob answered, first byte) samples; network "" is the node default (bridge)."""
    for _ in range(WARMUP):
        one_start(stub, network)
    answers, samples = [], []
    for _ in range(runs):
        answered, elapsed, output = one_start(stub, network)
        if output != b"hi\n":
            raise AssertionError(f"job printed {output!r}")
        answers.append(answered)
        samples.append(elapsed)
    return answers, samples


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 50 if args.quick else 300
    report = Report("job_start", args.quick)
    with running_daemon() as daemon:
        answers, samples = measure(daemon.jobs(), runs)
        none_answers, none_samples = measure(daemon.jobs(), runs, network="none")
    bare_unshare = time_first_byte(unshare_argv("echo", "hi"), runs)
    bare_exec = time_first_byte(["echo", "hi"], runs)
    naive_bridge = naive_bridge_starts(runs // 2)
    print("joblet (bridge)", describe_ms(samples))
    print("joblet (none)  ", describe_ms(none_samples))
    print("RunJob answered", describe_ms(answers))
    print("unshare ", describe_ms(bare_unshare))
    print("fork+exec", describe_ms(bare_exec))
    print("unshare + veth by `ip` calls (naive bridge)", describe_ms(naive_bridge))
    report.figures = {
        "p50_ms": p50(samples) * 1e3,
        "p99_ms": p99(samples) * 1e3,
        "runjob_answered_p50_ms": p50(answers) * 1e3,
        "none_p50_ms": p50(none_samples) * 1e3,
        "none_p99_ms": p99(none_samples) * 1e3,
        "none_runjob_answered_p50_ms": p50(none_answers) * 1e3,
    }
    report.baselines = {
        "unshare_p50_ms": p50(bare_unshare) * 1e3,
        "unshare_p99_ms": p99(bare_unshare) * 1e3,
        "fork_exec_p50_ms": p50(bare_exec) * 1e3,
        "fork_exec_p99_ms": p99(bare_exec) * 1e3,
        "naive_bridge_p50_ms": p50(naive_bridge) * 1e3,
        "naive_bridge_p99_ms": p99(naive_bridge) * 1e3,
    }
    report.figures["p50_vs_unshare_x"] = p50(samples) / p50(bare_unshare)
    report.check("p50", p50(none_samples) <= 0.015, "network none: <= 15 ms")
    report.check("p99", p99(none_samples) <= 0.050, "network none: <= 50 ms")
    report.check(
        "bridge p50",
        p50(samples) <= p50(none_samples) + 0.005,
        "bridge <= none + 5 ms",
    )
    report.check("bridge p99", p99(samples) <= 0.060, "bridge <= 60 ms")
    report.emit()


if __name__ == "__main__":
    main()
