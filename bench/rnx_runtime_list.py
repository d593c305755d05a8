"""`rnx runtime list` with 20 runtimes installed, against `rnx volume list`.

    .venv/bin/python bench/rnx_runtime_list.py [--quick]

One daemon; 20 small shell runtimes (3 MB each) installed from local files
through RuntimeService. Timed: the whole `rnx runtime list` command (process
start, TLS, the RPC, the table), and in the same run `rnx volume list` (the
same start and TLS with an empty answer) as the baseline, alternating; and
the ListRuntimes RPC alone on an open channel.
Target: <= 200 ms. Listing reads the sizes recorded at install:
it never walks a tree.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import grpc
from common import Report, describe_ms, p50, parse_args, running_daemon, time_command

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from integration.runtime_sources import local_request, write_runtime

RUNTIMES = 20


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 5 if args.quick else 20
    report = Report("rnx_runtime_list", args.quick)
    listing: list[float] = []
    baseline: list[float] = []
    with running_daemon() as daemon, tempfile.TemporaryDirectory() as tmp:
        channel = grpc.secure_channel(daemon.address, daemon.credentials())
        stub = pb_grpc.RuntimeServiceStub(channel)  # type: ignore[no-untyped-call]
        for i in range(RUNTIMES):
            src = write_runtime(Path(tmp) / f"rt{i}", f"bench-{i:02d}")
            res = stub.InstallRuntimeFromLocal(local_request(src), timeout=300)
            if res.status != "installed":
                raise AssertionError(res.message)
        listed = stub.ListRuntimes(pb.EmptyRequest())
        assert len(listed.runtimes) == RUNTIMES
        rpc = []
        for _ in range(runs * 10):
            start = time.perf_counter()
            stub.ListRuntimes(pb.EmptyRequest())
            rpc.append(time.perf_counter() - start)
        for _ in range(runs):
            listing += time_command(daemon.rnx_argv("runtime", "list"), 1)
            baseline += time_command(daemon.rnx_argv("volume", "list"), 1)
    print("rnx runtime list ", describe_ms(listing))
    print("rnx volume list  ", describe_ms(baseline))
    print("ListRuntimes RPC ", describe_ms(rpc))
    report.figures["list_rpc_p50_ms"] = p50(rpc) * 1e3
    report.figures["runtime_list_p50_ms"] = p50(listing) * 1e3
    report.baselines["volume_list_p50_ms"] = p50(baseline) * 1e3
    report.check("runtime list p50", p50(listing) <= 0.2, "<= 200 ms")
    report.emit()


if __name__ == "__main__":
    main()
