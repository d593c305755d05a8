"""RunJob callers in processes of their own, one process per daemon, so no
client GIL caps what several daemons accept together.

    python bench/submit_clients.py RNX_CONFIG ADDRESS COUNT CALLERS [--local] [--place=SPEC]

A process connects (CHANNELS mTLS channels, a handshake each), prints
`ready`, waits for a line on stdin, then sends COUNT RunJob of `true` from
CALLERS grpc.aio callers (`--local`: stdin: true, which keeps a job on the
daemon asked; `--place=SPEC`: RunJobRequest.place). Last it prints one
JSON line: the ids accepted and, in time.time(), its first send and its last
answer.
`run_clients` starts one such process per daemon and releases them together.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import yaml

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

CHANNELS = 5  # callers share a few HTTP/2 connections, as a client pool would


@dataclass
class Sent:
    ids: list[str]
    first_send: float
    last_answer: float


def credentials(rnx_config: Path) -> grpc.ChannelCredentials:
    entry = yaml.safe_load(rnx_config.read_text())["nodes"]["default"]
    return grpc.ssl_channel_credentials(
        root_certificates=entry["ca"].encode(),
        private_key=entry["key"].encode(),
        certificate_chain=entry["cert"].encode(),
    )


async def _send(
    rnx_config: Path, address: str, count: int, callers: int, request: pb.RunJobRequest
) -> Sent:
    creds = credentials(rnx_config)
    channels = [grpc.aio.secure_channel(address, creds) for _ in range(CHANNELS)]
    stubs = [pb_grpc.JobServiceStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
    for stub in stubs:  # connected and handshaken before the go
        await stub.ListJobs(pb.EmptyRequest())
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    left, ids = [count], list[str]()

    async def caller(stub: pb_grpc.JobServiceStub) -> None:
        while left[0] > 0:
            left[0] -= 1
            ids.append((await stub.RunJob(request)).jobUuid)

    first = time.time()
    await asyncio.gather(*(caller(stubs[i % CHANNELS]) for i in range(callers)))
    last = time.time()
    for channel in channels:
        await channel.close(None)
    return Sent(ids, first, last)


def run_clients(
    targets: list[tuple[Path, str]], count: int, callers: int, *, local: bool = False,
    place: str = "",
) -> list[Sent]:  # fmt: skip
    """`count` RunJobs to each (rnx config, address), one process each,
    released together once all are connected."""
    argv = [sys.executable, __file__, f"--place={place}"]
    procs = [
        subprocess.Popen(
            [*argv, str(config), address, str(count), str(callers), *(["--local"] * local)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for config, address in targets
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", "a client did not connect"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        out = []
        for proc in procs:
            stdout, _ = proc.communicate(timeout=1800)
            assert proc.returncode == 0, f"a client failed ({proc.returncode})"
            raw = json.loads(stdout.strip().splitlines()[-1])
            out.append(Sent(raw["ids"], raw["first_send"], raw["last_answer"]))
        return out
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def main() -> None:
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    config, address, count, callers = [a for a in sys.argv[1:] if not a.startswith("--")]
    place = next((f.split("=", 1)[1] for f in flags if f.startswith("--place=")), "")
    request = pb.RunJobRequest(command="true", stdin="--local" in flags, place=place)
    sent = asyncio.run(_send(Path(config), address, int(count), int(callers), request))
    print(json.dumps(sent.__dict__), flush=True)


if __name__ == "__main__":
    main()
