"""TCP throughput between two jobs on a custom network vs a bare veth pair.

    .venv/bin/python bench/network_tcp.py [--quick]

The script moves itself into a network namespace of its own (see
netbench.py), starts a daemon there and creates a custom network. One round:
a receiver job ("rx") and a sender job that finds it by name and writes 1 MiB
chunks for N seconds (veth -> bridge with the daemon's nftables rules ->
veth); then the same Python sender and receiver between two bare namespaces
joined by a veth pair made the default way (the baseline), and over a second
pair given the GSO sizes of a job's veth (512 KiB "BIG TCP" packets), which
shows the bridge path's own cost. Each kind goes first in turn; the figures
are the medians over rounds and the median of per-round ratios.
Target (issue 6): jobs >= 80% of raw (ratio of the medians).
"""

from __future__ import annotations

import statistics

from common import Report, parse_args, require_root, running_daemon
from netbench import create_network, enter_private_netns, job_stream, mbit, raw_pair

NETWORK, CIDR = "tcpbench", "10.210.0.0/24"


def main() -> None:
    args = parse_args(__doc__ or "")
    require_root()
    rounds, seconds = (3, 3.0) if args.quick else (5, 5.0)
    report = Report("network_tcp", args.quick)
    enter_private_netns()
    jobs: list[float] = []
    raw: list[float] = []
    raw_big: list[float] = []
    with (
        running_daemon() as daemon,
        raw_pair() as pair,
        raw_pair(big_tcp=True) as big_pair,
    ):
        create_network(daemon, NETWORK, CIDR)
        stub = daemon.jobs()
        job_stream(stub, NETWORK, 1.0)  # warm-up: page cache, first bridge port
        runs = {
            "job": (jobs, lambda: job_stream(stub, NETWORK, seconds)),
            "raw": (raw, lambda: pair.stream(seconds)),
            "raw_big": (raw_big, lambda: big_pair.stream(seconds)),
        }
        for i in range(rounds):
            order = list(runs)[i % 3 :] + list(runs)[: i % 3]  # each kind goes first in turn
            for kind in order:
                figures, stream = runs[kind]
                figures.append(stream())
            print(
                f"round {i + 1}: jobs {mbit(jobs[-1])}, raw veth {mbit(raw[-1])}, "
                f"raw veth with BIG TCP {mbit(raw_big[-1])}",
                flush=True,
            )
    job_median, raw_median = statistics.median(jobs), statistics.median(raw)
    ratio = job_median / raw_median
    report.figures = {
        "jobs_median_gbit_s": job_median / 1e9,
        "jobs_min_gbit_s": min(jobs) / 1e9,
        "jobs_max_gbit_s": max(jobs) / 1e9,
        "jobs_vs_raw_ratio": ratio,
        # Per round (the two streams of a round ran seconds apart): less
        # swayed by the load of this shared host drifting between rounds.
        "jobs_vs_raw_paired_median": statistics.median(
            j / r for j, r in zip(jobs, raw, strict=True)
        ),
    }
    report.baselines = {
        "raw_veth_median_gbit_s": raw_median / 1e9,
        "raw_veth_min_gbit_s": min(raw) / 1e9,
        "raw_veth_max_gbit_s": max(raw) / 1e9,
        # Not the target's baseline: the same pair with a job veth's GSO
        # sizes, which shows what the bridge path itself costs.
        "raw_veth_big_tcp_median_gbit_s": statistics.median(raw_big) / 1e9,
        "jobs_vs_raw_big_tcp_ratio": job_median / statistics.median(raw_big),
    }
    report.check("jobs vs raw", ratio >= 0.8, ">= 80% of a bare veth pair (issue 6)")
    report.notes.append(
        f"{rounds} rounds of {seconds:.0f} s, one stream, Python sender (1 MiB writes); "
        "jobs on a custom network (bridge, nftables, br_netfilter as the host has it); "
        "job veths carry 512 KiB GSO packets (IPv4 BIG TCP), the baseline pair 64 KiB"
    )
    report.emit()


if __name__ == "__main__":
    main()
