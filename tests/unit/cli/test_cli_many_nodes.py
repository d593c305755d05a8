"""`--node all` against fake nodes: one that answers, one that connects and
then never answers a call. The stuck one is given up on at --node-timeout
(its call's own deadline is 30 s), named on stderr, and the other's jobs
are printed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
import yaml
from conftest import CERT_PEM, KEY_PEM, FakeJobService, Rnx, insecure_channel

from joblet.cli.main import main


class _Stuck(grpc.GenericRpcHandler):
    """Answers nothing until released; other methods are UNIMPLEMENTED (so
    rnx's connection probe succeeds at once)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        if not details.method.startswith("/joblet.JobService/"):  # type: ignore[attr-defined]
            return None

        def hang(request: bytes, context: grpc.ServicerContext) -> bytes:
            self.release.wait(30)
            return b""

        return grpc.unary_unary_rpc_method_handler(hang)


@pytest.fixture
def stuck_port() -> Iterator[int]:
    handler = _Stuck()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    handler.release.set()
    server.stop(grace=None)


def _config(path: Path, ports: dict[str, int]) -> Path:
    nodes = {
        name: {"address": f"127.0.0.1:{port}", "cert": CERT_PEM, "key": KEY_PEM, "ca": CERT_PEM}
        for name, port in ports.items()
    }
    path.write_text(yaml.safe_dump({"nodes": nodes}))
    path.chmod(0o600)
    return path


def test_a_node_that_stops_answering_is_given_up_on(
    rnx: Rnx, service: tuple[FakeJobService, int], stuck_port: int, tmp_path: Path
) -> None:
    rnx("run", "echo", "hi")
    job_id = json.loads(rnx("--json", "list")[1])["jobs"][0]["id"]
    config = _config(tmp_path / "many.yml", {"good": service[1], "stuck": stuck_port})
    argv = ["--config", str(config), "--node", "all", "--node-timeout", "0.5s", "--json", "list"]
    started = time.monotonic()
    code = main(argv, channel_factory=insecure_channel)
    elapsed = time.monotonic() - started
    out, err = rnx.capsys.readouterr()
    assert code == 1
    assert [(j["node"], j["id"]) for j in json.loads(out)["jobs"]] == [("good", job_id)]
    error = json.loads(err)["error"]
    assert error["node"] == "stuck" and error["code"] == "DEADLINE_EXCEEDED"
    assert elapsed < 5


def test_when_no_node_answers_only_the_errors_are_printed(
    rnx: Rnx, stuck_port: int, tmp_path: Path
) -> None:
    config = _config(tmp_path / "many.yml", {"x": stuck_port, "y": stuck_port})
    argv = ["--config", str(config), "--node", "x,y", "--node-timeout", "0.3s", "list"]
    assert main(argv, channel_factory=insecure_channel) == 1
    out, err = rnx.capsys.readouterr()
    assert out == ""
    assert [line.split(":")[2].strip() for line in err.splitlines()] == ["node x", "node y"]


@pytest.fixture
def second_port() -> Iterator[int]:
    """Another fake node, with jobs of its own."""
    from joblet.api import joblet_pb2_grpc as pb_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_JobServiceServicer_to_server(FakeJobService(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(grace=None)


def test_the_limit_holds_over_every_node_and_says_when_it_cut(
    rnx: Rnx, service: tuple[FakeJobService, int], second_port: int, tmp_path: Path
) -> None:
    config = _config(tmp_path / "many.yml", {"a": service[1], "b": second_port})
    for node in ("a", "b"):
        for word in ("one", "two"):
            main(["--config", str(config), "--node", node, "run", "echo", word],
                 channel_factory=insecure_channel)  # fmt: skip
    rnx.capsys.readouterr()
    argv = ["--config", str(config), "--node", "all", "list", "--limit", "3", "-q"]
    assert main(argv, channel_factory=insecure_channel) == 0
    out, err = rnx.capsys.readouterr()
    assert len(out.splitlines()) == 3
    assert err == "rnx: showing the newest 3 matching jobs; more match" + (
        " (--limit N for more, --all for every one)\n"
    )
    argv[-3:-1] = ["--limit", "4"]
    assert main(argv, channel_factory=insecure_channel) == 0
    out, err = rnx.capsys.readouterr()
    assert len(set(out.splitlines())) == 4 and err == ""
