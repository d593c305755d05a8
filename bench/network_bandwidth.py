"""Bandwidth-limit accuracy: a job's TCP stream under maxEgressBitsPerSec
(set on the sender) and maxIngressBitsPerSec (set on the receiver).

    .venv/bin/python bench/network_bandwidth.py [--quick]

In a network namespace of its own (see netbench.py): a daemon, a custom
network, and for each rate (10 Mbit/s, 100 Mbit/s, 1 Gbit/s) one stream of
5 s with the limit on the sender's way out, one with it on the receiver's way
in, and, as the baseline from the same run, the same stream over a bare veth
pair shaped by `tc qdisc ... tbf` with textbook parameters. The receiver
counts payload bytes (TCP goodput), so ~4% of framing is below the rate.
Quick: one series; full: three, medians. Also checks that a rate with
network `none` or `host` is refused with INVALID_ARGUMENT.
Target: every rate within +-10%.
"""

from __future__ import annotations

import statistics

import grpc
from common import Daemon, Report, parse_args, require_root, running_daemon
from netbench import create_network, enter_private_netns, job_stream, mbit, raw_pair

from joblet.api import joblet_pb2 as pb

NETWORK, CIDR = "bwbench", "10.211.0.0/24"
RATES = {"10M": 10_000_000, "100M": 100_000_000, "1G": 1_000_000_000}
SECONDS = 5.0


def textbook_tbf(rate: int) -> list[str]:
    """tc's usual sizing: a bucket of ~10 ms at the rate (at least ten
    frames), a queue of 50 ms."""
    burst = max(rate // 8 // 100, 10 * 1514)
    return ["tbf", "rate", f"{rate}bit", "burst", str(burst), "latency", "50ms"]


def refused_without_network(daemon: Daemon) -> dict[str, bool]:
    stub = daemon.jobs()
    found = {}
    for network in ("none", "host"):
        try:
            stub.RunJob(
                pb.RunJobRequest(command="true", network=network, maxEgressBitsPerSec=10_000_000)
            )
            found[network] = False
        except grpc.RpcError as err:
            found[network] = err.code() is grpc.StatusCode.INVALID_ARGUMENT
            print(f"{network} with a rate: {err.code().name}: {err.details()}")
    return found


def main() -> None:
    args = parse_args(__doc__ or "")
    require_root()
    rounds = 1 if args.quick else 3
    report = Report("network_bandwidth", args.quick)
    enter_private_netns()
    samples: dict[str, list[float]] = {}
    with running_daemon() as daemon, raw_pair() as pair:
        create_network(daemon, NETWORK, CIDR)
        stub = daemon.jobs()
        for _ in range(rounds):
            for label, rate in RATES.items():
                egress = job_stream(stub, NETWORK, SECONDS, sender_egress_bps=rate)
                pair.shape("b", textbook_tbf(rate))
                raw = pair.stream(SECONDS)
                pair.unshape()
                ingress = job_stream(stub, NETWORK, SECONDS, receiver_ingress_bps=rate)
                for key, value in (("egress", egress), ("ingress", ingress), ("tc", raw)):
                    samples.setdefault(f"{label}_{key}", []).append(value)
                print(f"{label}: egress {mbit(egress)}, ingress {mbit(ingress)}, "
                      f"bare tbf {mbit(raw)}", flush=True)  # fmt: skip
        refused = refused_without_network(daemon)
    for label, rate in RATES.items():
        for way in ("egress", "ingress"):
            value = statistics.median(samples[f"{label}_{way}"])
            report.figures[f"{label}_{way}_mbit_s"] = value / 1e6
            report.check(
                f"{label} {way}", abs(value / rate - 1) <= 0.10, "within +-10% of the rate"
            )
        report.baselines[f"{label}_bare_tbf_mbit_s"] = (
            statistics.median(samples[f"{label}_tc"]) / 1e6
        )
    for network, ok in refused.items():
        report.check(f"rate with {network}", ok, "INVALID_ARGUMENT")
    report.notes.append(
        f"{rounds} series of {SECONDS:.0f} s TCP streams between two jobs on a custom network; "
        "figures are goodput (payload) medians"
    )
    report.emit()


if __name__ == "__main__":
    main()
