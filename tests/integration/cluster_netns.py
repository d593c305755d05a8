"""A placement cluster spread over network namespaces: a hub namespace
holds a bridge and redis-server (AOF, appendfsync always); each daemon has a
namespace of its own joined to the bridge by a veth pair, with addresses
only inside those namespaces. A partition is the node's veth (hub side)
taken down, a hang SIGSTOP of its daemon, a crash kill -9 of the daemon and
its launcher. Launches are counted from every node's log."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc

from joblet.api import joblet_pb2 as pb
from joblet.cluster import placement as p
from joblet.cluster.lease import lease_key, registry_prefix

from .conftest import RunningDaemon, launch_daemon
from .netns import Netns, in_netns

SUBNET = "10.77.0"  # the test bridge's /24, inside the namespaces only
HUB = f"{SUBNET}.1"
REDIS_PORT = 6379
PASSWORD = "split-test"  # a Redis reached from other hosts wants one (protected mode)
STARTED = re.compile(rb"placement: job ([0-9a-f-]{36}) started here")
T = TypeVar("T")


@dataclass
class SplitCluster:
    tmp: Path
    name: str
    ttl_s: float
    binary: str
    hub: Netns = field(default_factory=Netns)
    daemons: dict[str, RunningDaemon] = field(default_factory=dict)
    veths: dict[str, str] = field(default_factory=dict)  # node name -> hub-side veth
    redis: subprocess.Popen[bytes] | None = None

    @property
    def prefix(self) -> str:
        return registry_prefix(self.name)

    # ---- setup and teardown ---------------------------------------------

    def start(self, names: list[str], extra: dict[str, Any] | None = None) -> None:
        self.hub.ip("link", "add", "br-test", "type", "bridge")
        self.hub.ip("addr", "add", f"{HUB}/24", "dev", "br-test")
        self.hub.ip("link", "set", "br-test", "up")
        self.start_redis()
        for n, name in enumerate(names):
            self.add(name, n, extra or {})

    def add(self, name: str, n: int, extra: dict[str, Any]) -> None:
        world = Netns()
        veth = f"vh-{name}"
        try:
            pid = world.netns.split("/")[2]
            self.hub.ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pid)
            self.hub.ip("link", "set", veth, "master", "br-test", "up")
            world.ip("addr", "add", f"{SUBNET}.{10 + n}/24", "dev", "eth0")
            world.ip("link", "set", "eth0", "up")
            sections = {
                "state": {"backend": "redis",
                          "redis": {"host": HUB, "port": REDIS_PORT, "keyPrefix": f"{name}:",
                                    "password": PASSWORD}},
                "cluster": {"name": self.name, "leaseTtl": f"{self.ttl_s}s",
                            "renewEvery": f"{self.ttl_s / 4}s", "placement": True},
                "network": {"bridgeCidr": f"10.8{n}.0.0/24", "isolatedPool": f"10.9{n}.0.0/24"},
                **extra,
            }  # fmt: skip
            self.daemons[name] = launch_daemon(self.tmp / name, sections, world=world)
        except BaseException:
            world.close()
            raise
        self.veths[name] = veth

    def start_redis(self) -> None:
        args = ["--port", str(REDIS_PORT), "--bind", f"{HUB} 127.0.0.1", "--dir", str(self.tmp),
                "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                "--requirepass", PASSWORD]  # fmt: skip
        self.redis = subprocess.Popen(
            ["nsenter", f"--net={self.hub.netns}", self.binary, *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(Exception):
                if self.redis_do(lambda c: c.ping()):
                    return
            if self.redis.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def close(self) -> None:
        for daemon in self.daemons.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(daemon.proc.pid, signal.SIGCONT)
            daemon.stop()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait(timeout=10)
        self.hub.close()  # the bridge and the hub's veth ends go with it

    # ---- faults -----------------------------------------------------------

    def partition(self, name: str) -> None:
        self.hub.ip("link", "set", self.veths[name], "down")

    def heal(self, name: str) -> None:
        self.hub.ip("link", "set", self.veths[name], "up")

    def hang(self, name: str) -> None:
        os.kill(self.daemons[name].proc.pid, signal.SIGSTOP)

    def wake(self, name: str) -> None:
        os.kill(self.daemons[name].proc.pid, signal.SIGCONT)

    def crash(self, name: str) -> None:
        """kill -9 of the daemon and its launcher (its jobs die with it)."""
        daemon = self.daemons[name]
        launcher = daemon.launcher_pid()
        daemon.kill9()
        with contextlib.suppress(ProcessLookupError):
            os.kill(launcher, signal.SIGKILL)

    # ---- the store ----------------------------------------------------------

    def redis_do(self, fn: Callable[[Any], T]) -> T:
        import redis

        def call() -> T:
            client = redis.Redis(host=HUB, port=REDIS_PORT, password=PASSWORD, socket_timeout=10)
            try:
                return fn(client)
            finally:
                client.close()

        return in_netns(self.hub.netns, call)

    def node_id(self, name: str) -> str:
        return (self.daemons[name].root / "state" / "node-id").read_text().strip()

    def lease_alive(self, name: str) -> bool:
        key = lease_key(self.prefix, self.node_id(name))
        return bool(self.redis_do(lambda c: c.exists(key)))

    def records(self, ids: list[str]) -> list[dict[str, str]]:
        def read(client: Any) -> list[dict[str, str]]:
            pipe = client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hgetall(p.job_key(self.prefix, job_id))
            return [
                {k.decode(): v.decode(errors="replace") for k, v in row.items() if k != b"request"}
                for row in pipe.execute()
            ]

        return self.redis_do(read)

    def states(self, ids: list[str]) -> list[str]:
        return [r.get("state", "") for r in self.records(ids)]

    def wait_states(self, ids: list[str], wanted: set[str], timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            states = self.states(ids)
            if set(states) <= wanted:
                return states
            assert time.monotonic() < deadline, Counter(states)
            time.sleep(0.1)

    def starts(self) -> dict[str, Counter[str]]:
        """Per node, how often its log says it started each job."""
        return {
            name: Counter(m.decode() for m in STARTED.findall(d.log_path.read_bytes()))
            for name, d in self.daemons.items()
        }

    def run(self, name: str, count: int, **fields: Any) -> list[str]:
        stub = self.daemons[name].jobs()
        ids = []
        for _ in range(count):
            res = stub.RunJob(pb.RunJobRequest(**fields), timeout=10)
            assert res.status == "QUEUED", res
            ids.append(res.jobUuid)
        return ids


class Load:
    """`true` jobs sent to each of `names` (a thread each, so a node cut off
    holds up only its own), about `rate` a second each, until stopped; the
    ids accepted, and the refusals."""

    def __init__(self, cluster: SplitCluster, names: list[str], rate: float) -> None:
        self._stubs = [cluster.daemons[n].jobs() for n in names]
        self._gap = 1 / rate
        self._stop = threading.Event()
        self.ids: list[str] = []
        self.errors: list[str] = []
        self._threads = [threading.Thread(target=self._send, args=(s,)) for s in self._stubs]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _send(self, stub: Any) -> None:
        while not self._stop.wait(self._gap):
            try:
                res = stub.RunJob(pb.RunJobRequest(command="true"), timeout=10)
                self.ids.append(res.jobUuid)
            except grpc.RpcError as exc:  # a node cut off, hung or down
                self.errors.append(f"{exc.code()}: {exc.details()}")
