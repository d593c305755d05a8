"""A client generated from the v1.0.9 contract alone: our joblet.proto with
its additions taken out (fields numbered 100 and up, the RPCs and messages
added after v1.0.9), compiled at test time. What a reference client sends
and reads is what this one does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from grpc_tools import protoc

PROTO = Path(__file__).resolve().parents[2] / "proto" / "joblet" / "api" / "joblet.proto"
ADDED_RPCS = ("StopWorkflow", "DeleteWorkflow", "WatchWorkflow", "ListJobPages", "ListGpus")
ADDED_MESSAGES = (
    "StopWorkflowRequest",
    "StopWorkflowResponse",
    "DeleteWorkflowRequest",
    "DeleteWorkflowResponse",
    "ListJobPagesRequest",
    "JobPage",
    "ClusterNode",
    "ClusterNodes",
    "ListGpusRequest",
    "GpuInfo",
    "ListGpusResponse",
)
ADDED_SERVICES = ("ClusterService",)


def v109_text(text: str) -> str:
    text = re.sub(r"^[^\n/]*= 1\d\d;[^\n]*\n", "", text, flags=re.M)
    for rpc in ADDED_RPCS:
        text = re.sub(rf"^\s*(//[^\n]*\n\s*)*rpc {rpc}\(.*\n", "", text, flags=re.M)
    for message in ADDED_MESSAGES:
        text = re.sub(rf"^message {message} \{{.*?^\}}\n", "", text, flags=re.M | re.S)
    for service in ADDED_SERVICES:
        text = re.sub(rf"^service {service} \{{.*?^\}}\n", "", text, flags=re.M | re.S)
    return text


def compile_client(tmp: Path) -> Path:
    """The v1.0.9 contract compiled as package `joblet109` under `tmp`; returns
    `tmp`. Its messages share names with joblet.api's (package `joblet`, as the
    wire needs), so it runs in an interpreter of its own (`run_client`)."""
    package = tmp / "joblet109"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "joblet.proto").write_text(v109_text(PROTO.read_text()))
    args = ["protoc", f"-I{tmp}", f"--python_out={tmp}", f"--grpc_python_out={tmp}"]
    if protoc.main([*args, str(package / "joblet.proto")]) != 0:
        raise RuntimeError("protoc failed on the v1.0.9 proto")
    return tmp


PRELUDE = """
import json, sys, time
import grpc
from joblet109 import joblet_pb2 as pb, joblet_pb2_grpc as pb_grpc
node = json.loads(sys.argv[1])
creds = grpc.ssl_channel_credentials(
    node["ca"].encode(), node["key"].encode(), node["cert"].encode()
)
stub = pb_grpc.JobServiceStub(grpc.secure_channel(sys.argv[2], creds))
"""


def run_client(tmp: Path, node: dict[str, str], port: int, script: str) -> Any:
    """Run `script` in a new interpreter with `pb` and `stub` (a v1.0.9
    JobServiceStub on the daemon); what it assigns to `result` comes back."""
    code = PRELUDE + textwrap.dedent(script) + "\nprint(json.dumps(result))\n"
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(node), f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp,
        env={**os.environ, "PYTHONPATH": str(tmp)},
    )  # fmt: skip
    if proc.returncode != 0:
        raise AssertionError(f"v1.0.9 client failed: {proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
