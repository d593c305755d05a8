"""TCP throughput between two jobs on a custom network vs a bare veth pair.

    .venv/bin/python bench/network_tcp.py [--quick]

The script moves itself into a network namespace of its own (see
netbench.py), starts a daemon there and creates a custom network. One round:
a receiver job ("rx") and a sender job that finds it by name and writes 1 MiB
chunks for N seconds (veth -> bridge with the daemon's nftables rules ->
veth); then the same Python sender and receiver between two bare namespaces
joined by a veth pair made the default way (the baseline). Each kind goes
first in turn; figures are medians over rounds.

Two phases, one daemon each:

* `network.bigTcp: auto` (the default). This namespace has no uplink, so
  auto gives job veths 512 KiB GSO packets (IPv4 BIG TCP), as it does on a
  host whose routed links all take them. A second baseline pair with the
  same GSO sizes shows what the bridge path itself costs.
* `network.bigTcp: off`: 64 KiB packets, what auto gives on a host whose
  uplink takes only 64 KiB (most virtual NICs), against the same baseline.

Target: jobs >= 80% of raw (ratio of the medians), checked for
both phases.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable

from common import Report, parse_args, require_root, running_daemon
from netbench import create_network, enter_private_netns, job_stream, mbit, raw_pair

NETWORK = "tcpbench"
# One per phase: a stopped daemon's bridges stay (networks outlive a restart).
CIDRS = {"auto": "10.210.0.0/24", "off": "10.211.0.0/24"}


def rounds_of(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """`rounds` rounds of every run, each kind first in turn."""
    kinds = list(runs)
    out: dict[str, list[float]] = {kind: [] for kind in kinds}
    for i in range(rounds):
        for kind in kinds[i % len(kinds) :] + kinds[: i % len(kinds)]:
            out[kind].append(runs[kind]())
        print(f"round {i + 1}: " + ", ".join(f"{k} {mbit(v[-1])}" for k, v in out.items()))
    return out


def phase(big_tcp: str, rounds: int, seconds: float, big_baseline: bool) -> dict[str, list[float]]:
    print(f"-- network.bigTcp: {big_tcp}", flush=True)
    with contextlib.ExitStack() as stack:
        daemon = stack.enter_context(running_daemon(sections={"network": {"bigTcp": big_tcp}}))
        pair = stack.enter_context(raw_pair())
        create_network(daemon, NETWORK, CIDRS[big_tcp])
        stub = daemon.jobs()
        job_stream(stub, NETWORK, 1.0)  # warm-up: page cache, first bridge port
        runs = {
            "jobs": lambda: job_stream(stub, NETWORK, seconds),
            "raw veth": lambda: pair.stream(seconds),
        }
        if big_baseline:
            big_pair = stack.enter_context(raw_pair(big_tcp=True))
            runs["raw veth with BIG TCP"] = lambda: big_pair.stream(seconds)
        return rounds_of(runs, rounds)


def main() -> None:
    args = parse_args(__doc__ or "")
    require_root()
    rounds, seconds = (3, 3.0) if args.quick else (5, 5.0)
    report = Report("network_tcp", args.quick)
    enter_private_netns()
    for mode, label in (("auto", ""), ("off", "big_tcp_off_")):
        got = phase(mode, rounds, seconds, big_baseline=mode == "auto")
        jobs, raw = got["jobs"], got["raw veth"]
        ratio = statistics.median(jobs) / statistics.median(raw)
        report.figures |= {
            f"{label}jobs_median_gbit_s": statistics.median(jobs) / 1e9,
            f"{label}jobs_min_gbit_s": min(jobs) / 1e9,
            f"{label}jobs_max_gbit_s": max(jobs) / 1e9,
            f"{label}jobs_vs_raw_ratio": ratio,
            # Per round (the streams of a round ran seconds apart): less
            # swayed by the load of this shared host drifting between rounds.
            f"{label}jobs_vs_raw_paired_median": statistics.median(
                j / r for j, r in zip(jobs, raw, strict=True)
            ),
        }
        report.baselines |= {
            f"{label}raw_veth_median_gbit_s": statistics.median(raw) / 1e9,
            f"{label}raw_veth_min_gbit_s": min(raw) / 1e9,
            f"{label}raw_veth_max_gbit_s": max(raw) / 1e9,
        }
        if "raw veth with BIG TCP" in got:
            # Not the target's baseline: the same pair with a job veth's GSO
            # sizes, which shows what the bridge path itself costs.
            big = statistics.median(got["raw veth with BIG TCP"])
            report.baselines["raw_veth_big_tcp_median_gbit_s"] = big / 1e9
            report.baselines["jobs_vs_raw_big_tcp_ratio"] = statistics.median(jobs) / big
        name = "jobs vs raw" + (" (bigTcp off)" if label else "")
        report.check(name, ratio >= 0.8, ">= 80% of a bare veth pair")
    report.notes.append(
        f"{rounds} rounds of {seconds:.0f} s per phase, one stream, Python sender (1 MiB "
        "writes); jobs on a custom network (bridge, nftables, br_netfilter as the host has "
        "it); bigTcp auto gave job veths 512 KiB GSO packets here (no uplink), off 64 KiB; "
        "the baseline pair has the kernel's default, 64 KiB"
    )
    report.emit()


if __name__ == "__main__":
    main()
