"""A small shell-script runtime to install through a real daemon: quick to
build, with a test whose exit code the host can change after install."""

from __future__ import annotations

from pathlib import Path

from joblet.api import joblet_pb2 as pb

SPEC = """\
name: {name}
language: sh
version: "1"
description: a tiny shell runtime
requirements: {{architectures: [{arches}], gpu: {gpu}}}
packages: [hello]
build: {{script: build.sh, timeout: {timeout}, max_memory: 256, network: {network}}}
environment: {{PATH: "/opt/runtime/bin:${{PATH}}", SHTOOLS: "yes"}}
test: {{command: sh, args: ["-c", "hello; exit $(cat /opt/runtime/code)"], timeout: {test_timeout}}}
"""

BUILD = """\
set -e
echo "building {name}"
mkdir -p /opt/runtime/bin
printf '#!/bin/sh\\necho "hello from $(cat /opt/runtime/version)"\\n' > /opt/runtime/bin/hello
chmod 755 /opt/runtime/bin/hello
cp /src/version.txt /opt/runtime/version
echo 0 > /opt/runtime/code
printf 'hello==1\\nworld==2\\n' > /opt/runtime/.packages
head -c 3000000 /dev/urandom > /opt/runtime/data
{extra}
echo "built {name}"
"""


def write_runtime(
    directory: Path,
    name: str,
    *,
    version: str = "v1",
    extra: str = "",
    timeout: str = "60s",
    arches: str = "amd64, arm64",
    gpu: bool = False,
    test_timeout: str = "30s",
    network: str = "none",
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    spec = SPEC.format(
        name=name,
        timeout=timeout,
        arches=arches,
        gpu=str(gpu).lower(),
        test_timeout=test_timeout,
        network=network,
    )
    (directory / "runtime.yml").write_text(spec)
    (directory / "build.sh").write_text(BUILD.format(name=name, extra=extra))
    (directory / "version.txt").write_text(version + "\n")
    return directory


def local_request(
    directory: Path, name: str = "", force: bool = False
) -> pb.InstallRuntimeFromLocalRequest:
    files = [
        pb.RuntimeFile(path=p.name, content=p.read_bytes(), executable=p.suffix == ".sh")
        for p in sorted(directory.iterdir())
        if p.is_file()
    ]
    return pb.InstallRuntimeFromLocalRequest(runtimeSpec=name, files=files, forceReinstall=force)
