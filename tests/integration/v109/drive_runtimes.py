"""Drives all nine RuntimeService RPCs with stubs generated from the v1.0.9
tables alone (runtime_pb2 on sys.path), printing one JSON object of answers.

    python3 drive_runtimes.py GENERATED_DIR ADDRESS CA CERT KEY SOURCE_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import grpc

sys.path.insert(0, sys.argv[1])
import runtime_pb2 as pb
import runtime_pb2_grpc as pb_grpc


def code_of(call):  # type: ignore[no-untyped-def]
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code().name
    return "OK"


def main() -> None:
    address, ca, cert, key, source = sys.argv[2:7]
    creds = grpc.ssl_channel_credentials(
        Path(ca).read_bytes(), Path(key).read_bytes(), Path(cert).read_bytes()
    )
    stub = pb_grpc.RuntimeServiceStub(grpc.secure_channel(address, creds))
    files = [
        pb.RuntimeFile(path=p.name, content=p.read_bytes(), executable=p.suffix == ".sh")
        for p in sorted(Path(source).iterdir())
    ]
    out: dict[str, object] = {}
    res = stub.InstallRuntimeFromLocal(pb.InstallRuntimeFromLocalRequest(files=files), timeout=120)
    out["install"] = [res.status, res.runtimeSpec, bool(res.buildJobUuid)]
    chunks = list(
        stub.StreamingInstallRuntimeFromLocal(
            pb.InstallRuntimeFromLocalRequest(files=files, forceReinstall=True), timeout=120
        )
    )
    out["stream"] = [c.WhichOneof("chunk_type") for c in chunks]
    out["steps"] = [c.progress.step for c in chunks if c.HasField("progress")]
    out["result"] = chunks[-1].result.success
    listed = stub.ListRuntimes(pb.EmptyRequest())
    out["list"] = [
        [r.name, r.sizeBytes > 0, r.available, list(r.packages)] for r in listed.runtimes
    ]
    info = stub.GetRuntimeInfo(pb.RuntimeInfoReq(runtime="v109"))
    out["info"] = [info.found, info.runtime.language, list(info.runtime.requirements.architectures)]
    test = stub.TestRuntime(pb.RuntimeTestReq(runtime="v109"), timeout=60)
    out["test"] = [test.success, test.exitCode, test.output]
    valid = stub.ValidateRuntimeSpec(pb.ValidateRuntimeSpecRequest(runtimeSpec="python:3.11-ml"))
    out["validate"] = [valid.valid, valid.normalizedSpec, list(valid.specInfo.variants)]
    off = pb.InstallRuntimeRequest(runtimeSpec="x", repository="https://example.invalid/x.zip")
    out["github"] = code_of(lambda: stub.InstallRuntimeFromGithub(off, timeout=30))
    out["github_stream"] = code_of(
        lambda: list(stub.StreamingInstallRuntimeFromGithub(off, timeout=30))
    )
    removed = stub.RemoveRuntime(pb.RuntimeRemoveReq(runtime="v109"))
    out["remove"] = [removed.success, removed.freedSpaceBytes > 0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
