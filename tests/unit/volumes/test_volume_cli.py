"""`rnx volume ...` against an in-process fake VolumeService (no daemon)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc
from joblet.cli import volume
from joblet.cli.context import CommandContext
from joblet.cli.parser import RnxArgumentParser, add_global_options
from joblet.client.config import NodeConfig
from joblet.client.errors import CliError

PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


class FakeVolumes(pb_grpc.VolumeServiceServicer):
    def __init__(self) -> None:
        self.created: list[pb.CreateVolumeReq] = []

    def CreateVolume(
        self, request: pb.CreateVolumeReq, context: grpc.ServicerContext
    ) -> pb.CreateVolumeRes:
        if request.name == "dup":
            context.abort(grpc.StatusCode.ALREADY_EXISTS, "volume 'dup' already exists")
        self.created.append(request)
        return pb.CreateVolumeRes(
            name=request.name, size=request.size, type=request.type, path="/r/v/mnt"
        )

    def ListVolumes(self, request: pb.EmptyRequest, context: grpc.ServicerContext) -> pb.Volumes:
        return pb.Volumes(
            volumes=[
                pb.Volume(
                    name="data",
                    size="1GB",
                    type="filesystem",
                    path="/r/v/data/mnt",
                    createdTime="2024-05-01T10:00:00+00:00",
                    jobCount=2,
                )
            ]
        )

    def RemoveVolume(
        self, request: pb.RemoveVolumeReq, context: grpc.ServicerContext
    ) -> pb.RemoveVolumeRes:
        if request.name == "busy":
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "volume 'busy' is in use by job(s) j1"
            )
        return pb.RemoveVolumeRes(success=True, message=f"volume {request.name} removed")


@pytest.fixture
def server() -> Iterator[tuple[FakeVolumes, str]]:
    fake = FakeVolumes()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_VolumeServiceServicer_to_server(fake, srv)  # type: ignore[no-untyped-call]
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    yield fake, f"127.0.0.1:{port}"
    srv.stop(None)


def run(tmp_path: Path, address: str, *argv: str) -> tuple[int, str]:
    config = tmp_path / "rnx.yml"
    lines = ["nodes:", "  default:", f"    address: {address!r}"]
    for key in ("cert", "key", "ca"):
        lines += [f"    {key}: |", *(f"      {v}" for v in PEM.splitlines())]
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o600)  # it holds a key
    parser = RnxArgumentParser(prog="rnx")
    add_global_options(parser, None)
    common = RnxArgumentParser(add_help=False)
    add_global_options(common, argparse.SUPPRESS)
    volume.add_commands(parser.add_subparsers(required=True), [common])
    args = parser.parse_args(["--config", str(config), *argv])
    out_path = tmp_path / "out.txt"
    with out_path.open("w") as out:
        ctx = CommandContext(
            args, out, out, {}, tmp_path, tmp_path, lambda node: grpc.insecure_channel(node.address)
        )
        code = args.handler(ctx)
    return code, out_path.read_text()


def test_create_sends_name_size_and_type(tmp_path: Path, server: tuple[FakeVolumes, str]) -> None:
    fake, address = server
    code, out = run(
        tmp_path, address, "volume", "create", "data", "--size", "1GB", "--type", "memory"
    )
    assert code == 0 and "Volume data created (memory, 1GB)" in out
    assert (fake.created[0].name, fake.created[0].size, fake.created[0].type) == (
        "data",
        "1GB",
        "memory",
    )
    code, out = run(tmp_path, address, "volume", "create", "d2", "--size", "5MB", "--json")
    assert json.loads(out) == {
        "name": "d2",
        "size": "5MB",
        "type": "filesystem",
        "path": "/r/v/mnt",
    }


def test_list_as_table_and_json(tmp_path: Path, server: tuple[FakeVolumes, str]) -> None:
    _, address = server
    code, out = run(tmp_path, address, "volume", "list")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["NAME", "SIZE", "TYPE", "JOBS", "CREATED", "PATH"]
    assert row.split()[:4] == ["data", "1GB", "filesystem", "2"]
    code, out = run(tmp_path, address, "volume", "list", "--json")
    assert json.loads(out)["volumes"][0]["job_count"] == 2


def test_remove_and_its_refusal(tmp_path: Path, server: tuple[FakeVolumes, str]) -> None:
    _, address = server
    assert run(tmp_path, address, "volume", "remove", "data") == (0, "volume data removed\n")
    with pytest.raises(CliError, match="in use by job"):
        run(tmp_path, address, "volume", "remove", "busy")
    with pytest.raises(CliError, match="already exists"):
        run(tmp_path, address, "volume", "create", "dup", "--size", "1GB")


def test_usage_errors(tmp_path: Path, server: tuple[FakeVolumes, str]) -> None:
    _, address = server
    with pytest.raises(CliError):
        run(tmp_path, address, "volume", "create", "data")  # no --size
    with pytest.raises(CliError):
        run(tmp_path, address, "volume", "create", "data", "--size", "1GB", "--type", "nfs")


def test_render_empty() -> None:
    assert volume.render_volumes([]) == "No volumes."
    assert isinstance(NodeConfig, type)
