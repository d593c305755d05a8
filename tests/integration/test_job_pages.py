"""ListJobs bounded for stock clients, and ListJobPages (filters, cursor)
against a real daemon holding many real job records."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
import pytest

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import RunningDaemon, wait_status
from .proto109 import compile_client, run_client
from .seeding import finished_jobs, node_id, seed

pytestmark = pytest.mark.integration

NO_RETENTION = {"maxAge": 0, "maxJobs": 0}
STOCK_LIST = """
call = stub.ListJobs.with_call(pb.EmptyRequest(), timeout=120)
jobs = call[0].jobs
trailers = dict(call[1].trailing_metadata())
result = {
    "count": len(jobs),
    "bytes": call[0].ByteSize(),
    "statuses": {j.uuid: j.status for j in jobs if j.status != "COMPLETED"},
    "finished": [j.uuid for j in jobs if j.status == "COMPLETED"],
    "omitted": trailers.get("joblet-omitted-finished-jobs"),
}
"""


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def pages(stub: pb_grpc.JobServiceStub, **fields: object) -> list[pb.JobPage]:
    request = pb.ListJobPagesRequest(**fields)  # type: ignore[arg-type]
    return list(stub.ListJobPages(request, timeout=60))


def listed_ids(stub: pb_grpc.JobServiceStub, **fields: object) -> list[str]:
    return [job.uuid for page in pages(stub, **fields) for job in page.jobs]


def test_30000_jobs_fit_a_stock_v109_client_with_every_unfinished_one(
    make_daemon: Callable[..., RunningDaemon], tmp_path_factory: pytest.TempPathFactory
) -> None:
    daemon = make_daemon(jobRetention=NO_RETENTION)
    old = finished_jobs(30_000, time.time() - 86400, node_id(daemon))
    seed(daemon, old)
    stub = daemon.jobs()
    running = stub.RunJob(pb.RunJobRequest(command="sleep", args=["60"])).jobUuid
    scheduled = stub.RunJob(pb.RunJobRequest(command="true", schedule="1h")).jobUuid
    wait_status(stub, running, {"RUNNING"})
    tmp = compile_client(tmp_path_factory.mktemp("proto109"))
    result = run_client(tmp, daemon.node(), daemon.port, STOCK_LIST)  # gRPC's defaults
    assert result["bytes"] <= 3 * 1024 * 1024
    assert result["statuses"] == {running: "RUNNING", scheduled: "SCHEDULED"}
    kept = result["finished"]
    assert 10_000 < len(kept) < 30_000
    assert int(result["omitted"]) == 30_000 - len(kept)
    # the newest finished ones
    assert set(kept) == {job.id for job in old[-len(kept) :]}
    # The others stay reachable: by id, and through the pages.
    assert stub.GetJobStatus(pb.GetJobStatusReq(uuid=old[0].id)).status == "COMPLETED"
    everything = listed_ids(stub, pageSize=1000)
    assert len(everything) == len(set(everything)) == 30_002
    assert everything[:2] == [scheduled, running] and everything[-1] == old[0].id


def test_pages_filter_and_a_limit_says_whether_more_match(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon(jobRetention=NO_RETENTION)
    start = time.time() - 3600
    node = node_id(daemon)
    web = finished_jobs(30, start, node, step=1.0, name="web")
    db = finished_jobs(20, start + 100, node, step=1.0, name="db")
    seed(daemon, [*web, *db])
    stub = daemon.jobs()
    failing = stub.RunJob(pb.RunJobRequest(command="false", name="web-fail")).jobUuid
    wait_status(stub, failing, {"FAILED"})
    newest_first = [job.id for job in reversed([*web, *db])]

    got = pages(stub, pageSize=7)
    assert [len(p.jobs) for p in got] == [7] * 7 + [2]
    assert [j.uuid for p in got for j in p.jobs] == [failing, *newest_first]
    assert listed_ids(stub, statuses=["FAILED"]) == [failing]
    assert listed_ids(stub, statuses=["failed", "completed"], namePrefix="db") == [
        job.id for job in reversed(db)
    ]
    assert listed_ids(stub, idPrefix=web[3].id[:13]) == [web[3].id]
    assert listed_ids(stub, createdSince=rfc3339(db[0].created_at), createdUntil=rfc3339(
        db[5].created_at)) == [job.id for job in reversed(db[:5])]  # fmt: skip
    assert listed_ids(stub, nodeId=node, namePrefix="web-2") == [
        job.id for job in reversed([web[2], *web[20:30]])
    ]
    assert listed_ids(stub, nodeId="another-node") == []
    limited = pages(stub, limit=10, pageSize=4)
    assert [j.uuid for p in limited for j in p.jobs] == [failing, *newest_first[:9]]
    assert limited[-1].more
    assert not pages(stub, limit=51)[-1].more
    # the cursor goes on where the limit stopped
    rest = listed_ids(stub, cursor=limited[-1].nextCursor)
    assert rest == newest_first[9:]
    for bad, message in (
        ({"statuses": ["DONE"]}, "status 'DONE' is not a job status"),
        ({"cursor": "nonsense"}, "is not one a JobPage gave"),
        ({"createdSince": "yesterday"}, "give an RFC 3339 time"),
        ({"limit": -1}, "limit must be >= 0"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            pages(stub, **bad)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert message in str(caught.value.details())
    viewer = daemon.jobs("viewer")
    assert len(listed_ids(viewer, limit=3)) == 3


def test_no_job_twice_and_none_skipped_while_jobs_are_added_and_collected(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon(jobRetention={"maxAge": "2s", "maxJobs": 0, "interval": "0.2s"})
    stub = daemon.jobs()
    stay: list[str] = []
    go: list[str] = []
    for _ in range(12):  # interleaved: every other job will be collected mid-listing
        stay.append(stub.RunJob(pb.RunJobRequest(command="true", schedule="1h")).jobUuid)
        job_id = stub.RunJob(pb.RunJobRequest(command="true")).jobUuid
        wait_status(stub, job_id, {"COMPLETED"})
        go.append(job_id)
    stop = threading.Event()
    added: list[str] = []

    def add() -> None:
        while not stop.is_set():
            added.append(stub.RunJob(pb.RunJobRequest(command="true")).jobUuid)
            time.sleep(0.05)

    page = pages(stub, limit=3)
    seen = [j.uuid for p in page for j in p.jobs]
    adder = threading.Thread(target=add)
    adder.start()
    try:
        while page[-1].more:
            time.sleep(0.3)  # the collector and the adder run meanwhile
            page = pages(stub, limit=3, cursor=page[-1].nextCursor)
            seen += [j.uuid for p in page for j in p.jobs]
    finally:
        stop.set()
        adder.join()
    assert len(seen) == len(set(seen)), "a job came twice"
    assert set(stay) <= set(seen), "a job that was there throughout was skipped"
    assert added and not set(added) & set(seen)  # newer than the first page
    # collection happened during the listing: some went before their turn
    collected_before = [job_id for job_id in go if job_id not in seen]
    assert collected_before and len(collected_before) < len(go)


def test_rnx_list_pages_newest_first_with_status_since_limit_and_all(
    make_daemon: Callable[..., RunningDaemon],
) -> None:
    daemon = make_daemon(jobRetention=NO_RETENTION)
    old = finished_jobs(150, time.time() - 7200, node_id(daemon), step=1.0)
    seed(daemon, old)
    stub = daemon.jobs()
    failed = stub.RunJob(pb.RunJobRequest(command="false", name="recent-fail")).jobUuid
    wait_status(stub, failed, {"FAILED"})

    def quiet(*args: str) -> tuple[list[str], str]:
        proc = daemon.rnx("list", "-q", *args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.decode().split(), proc.stderr.decode()

    ids, note = quiet()
    assert ids == [failed, *[job.id for job in reversed(old)]][:100]
    assert "showing the newest 100 matching jobs; more match" in note
    assert "--all" in note
    ids, note = quiet("--all")
    assert len(ids) == 151 and note == ""
    assert quiet("--status", "failed") == ([failed], "")
    assert quiet("--since", "10m")[0] == [failed]
    assert quiet("--limit", "3")[0] == [failed, old[-1].id, old[-2].id]
    assert quiet("--name", "batch-step-14?", "--all")[0] == [
        job.id for job in reversed(old[140:150])
    ]
    bad = daemon.rnx("list", "--all", "--limit", "3")
    assert bad.returncode == 2 and b"not allowed with argument" in bad.stderr
