"""The web UI against a real daemon: sign-in, roles, the attack surface
(CSRF, Origin, Host, viewers), the run form's idempotency and live logs."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import grpc
import pytest
import yaml

from joblet.api import joblet_pb2 as pb
from joblet.api import joblet_pb2_grpc as pb_grpc

from .conftest import ROOT_NEEDED, RunningDaemon, wait_status
from .netns import in_netns
from .runtime_sources import write_runtime
from .ui_support import Browser, UiProcess, mint, multipart, sse_events, start_ui, ui_world

pytestmark = [pytest.mark.integration, pytest.mark.privileged]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDaemon, UiProcess]]:
    if os.geteuid() != 0:
        pytest.skip(ROOT_NEEDED)
    with ui_world(tmp_path_factory.mktemp("ui")) as both:
        yield both


@pytest.fixture
def admin(world: tuple[RunningDaemon, UiProcess]) -> Browser:
    daemon, ui = world
    browser = Browser(ui)
    assert browser.sign_in(mint(daemon, "admin")).status == 303
    return browser


@pytest.fixture
def viewer(world: tuple[RunningDaemon, UiProcess]) -> Browser:
    daemon, ui = world
    browser = Browser(ui)
    assert browser.sign_in(mint(daemon, "viewer")).status == 303
    return browser


def stop_quietly(daemon: RunningDaemon, job: str) -> None:
    with contextlib.suppress(grpc.RpcError):  # it may have ended already
        daemon.jobs().StopJob(pb.StopJobReq(uuid=job))


def run_job(daemon: RunningDaemon, *command: str) -> str:
    answer = daemon.jobs().RunJob(pb.RunJobRequest(command=command[0], args=command[1:]))
    return str(answer.jobUuid)


def test_rnx_ui_link_signs_in_once_with_the_callers_role(
    world: tuple[RunningDaemon, UiProcess],
) -> None:
    daemon, ui = world
    done = daemon.rnx("ui", node="viewer")
    assert done.returncode == 0, done.stderr
    link = done.stdout.decode().strip()
    found = re.fullmatch(r"http://127\.0\.0\.1:5175/login#([\w.-]+)", link)
    assert found, link
    browser = Browser(ui)
    reply = browser.sign_in(found.group(1))
    assert (reply.status, reply.header("Location")) == (303, "/jobs")
    cookie = browser.login_cookies[0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=43200" in cookie
    assert "(viewer)" in browser.get("/jobs").body
    again = Browser(ui).sign_in(found.group(1))
    assert again.status == 401 and "already used" in again.body


def test_an_expired_or_forged_token_is_refused(world: tuple[RunningDaemon, UiProcess]) -> None:
    daemon, ui = world
    token = mint(daemon, "admin", ttl="1s")
    time.sleep(1.2)
    reply = Browser(ui).sign_in(token)
    assert reply.status == 401 and "expired" in reply.body
    assert Browser(ui).sign_in(token[:-4] + "AAAA").status == 401
    assert Browser(ui).get("/jobs").status == 303  # no session: to the login page


def test_every_page_has_the_security_headers(admin: Browser) -> None:
    for path in ("/login", "/jobs", "/run", "/workflows", "/host", "/resources", "/static/app.js"):
        reply = admin.get(path)
        assert reply.status == 200, (path, reply.body[:300])
        assert reply.header("Content-Security-Policy").startswith("default-src 'self'"), path
        assert reply.header("X-Frame-Options") == "DENY"
        assert not reply.header("Access-Control-Allow-Origin")


def test_a_post_without_csrf_token_or_from_another_origin_is_refused(
    world: tuple[RunningDaemon, UiProcess], admin: Browser
) -> None:
    daemon, _ = world
    job = run_job(daemon, "sleep", "30")
    try:
        assert admin.post(f"/jobs/{job}/stop", csrf=False).status == 403
        assert admin.post(f"/jobs/{job}/stop", {"csrf": "wrong"}).status == 403
        evil = admin.post(f"/jobs/{job}/stop", headers={"Origin": "http://evil.example"})
        assert (evil.status, evil.body) == (403, "cross-origin request refused\n")
        assert admin.post(f"/jobs/{job}/stop", headers={"Origin": ""}).status == 403
        assert daemon.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job)).status == "RUNNING"
        stopped = admin.post(f"/jobs/{job}/stop")
        assert (stopped.status, stopped.header("Location")) == (303, f"/jobs/{job}")
        wait_status(daemon.jobs(), job, {"STOPPED"})
    finally:
        stop_quietly(daemon, job)


def test_a_foreign_host_name_is_refused(admin: Browser) -> None:
    # DNS rebinding: evil.example resolved to 127.0.0.1 still says evil.example
    reply = admin.get("/jobs", headers={"Host": f"evil.example:{admin.ui.port}"})
    assert reply.status == 421
    assert admin.request("OPTIONS", "/jobs").status == 405


def test_a_viewer_sees_no_actions_and_a_forged_post_is_refused_twice(
    world: tuple[RunningDaemon, UiProcess], viewer: Browser
) -> None:
    daemon, _ = world
    job = run_job(daemon, "sleep", "30")
    try:
        page = viewer.get(f"/jobs/{job}")
        assert page.status == 200 and "sleep" in page.body
        assert "/stop" not in page.body and 'href="/run"' not in page.body
        assert viewer.get("/run").status == 403
        # the UI refuses before it calls the daemon (whose refusal reads otherwise)
        for path, form in ((f"/jobs/{job}/stop", {}), ("/run", {"command": "true"})):
            refused = viewer.post(path, form)
            assert (refused.status, refused.body) == (403, "viewers may not change anything\n")
        # the daemon refuses the UI's viewer certificate as well
        nodes = yaml.safe_load((daemon.root / "config" / "ui-clients.yml").read_text())
        entry = nodes["nodes"]["viewer"]
        creds = grpc.ssl_channel_credentials(
            entry["ca"].encode(), entry["key"].encode(), entry["cert"].encode()
        )
        channel = grpc.secure_channel(f"127.0.0.1:{daemon.port}", creds)
        with channel, pytest.raises(grpc.RpcError) as caught:
            pb_grpc.JobServiceStub(channel).StopJob(pb.StopJobReq(uuid=job))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert daemon.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job)).status == "RUNNING"
    finally:
        stop_quietly(daemon, job)


def test_a_double_submit_of_the_run_form_starts_one_job(
    world: tuple[RunningDaemon, UiProcess], admin: Browser
) -> None:
    daemon, _ = world
    form = {"command": "echo once", "name": "ui-once", "idempotency_key": "k-123"}
    first, second = admin.post("/run", form), admin.post("/run", form)
    assert first.status == second.status == 303
    assert first.header("Location") == second.header("Location")
    jobs = daemon.jobs().ListJobs(pb.EmptyRequest()).jobs
    assert [j.name for j in jobs].count("ui-once") == 1
    bad = admin.post("/run", {"command": "true", "maxMemory": "lots", "idempotency_key": "k2"})
    assert bad.status == 400 and "maxMemory must be a whole number" in bad.body


def test_a_live_log_resumes_at_its_offset_without_gap_or_duplicate(
    world: tuple[RunningDaemon, UiProcess], admin: Browser
) -> None:
    daemon, ui = world
    job = run_job(daemon, "sh", "-c", "for i in $(seq 1 40); do echo line $i; sleep 0.02; done")
    path = f"/jobs/{job}/events"
    first = [e for e in sse_events(ui, path, admin.cookie, stop_after_log=1) if e[0] == "log"]
    rest = sse_events(ui, path, admin.cookie, last_event_id=first[-1][1])
    text = "".join(d for kind, _, d in first + [e for e in rest if e[0] == "log"])
    # each event's data is whole lines; joined they are the output, each line once
    assert text.split("\n")[:-1] == [f"line {i}" for i in range(1, 41)], text
    assert rest[-1][0] == "end"
    assert any(kind == "status" and 'data-field="uuid">' + job in data for kind, _, data in rest)


def test_earlier_lines_of_a_long_log_load_on_demand_with_no_gap_or_duplicate(
    world: tuple[RunningDaemon, UiProcess], viewer: Browser
) -> None:
    daemon, ui = world
    job = run_job(daemon, "seq", "1", "25000")  # more than the pane's 10,000 lines
    wait_status(daemon.jobs(), job, {"COMPLETED"})
    events = sse_events(ui, f"/jobs/{job}/events", viewer.cookie, until="end", limit=100_000)
    at = [data for kind, _, data in events if kind == "at"]
    shown = "".join(data for kind, _, data in events if kind == "log").splitlines()
    assert shown == [str(n) for n in range(15001, 25001)] and len(at) == 1
    gen, first = at[0].split(":")
    before, pages = int(first), 0
    while True:
        reply = viewer.get(f"/jobs/{job}/log/earlier?gen={gen}&before={before}&lines=6000")
        assert reply.status == 200, reply.body
        got = json.loads(reply.body)
        shown = got["text"].splitlines() + shown
        before, pages = got["first"], pages + 1
        if got["atStart"]:
            break
    assert shown == [str(n) for n in range(1, 25001)]  # each line once, in order
    assert pages == 3 and before == -15000
    # the whole output as a file, not only the pane's window
    download = viewer.get(f"/jobs/{job}/log.txt")
    assert download.status == 200 and "attachment" in download.header("Content-Disposition")
    assert download.body.splitlines() == shown
    missing = viewer.get("/jobs/no-such-job/log.txt")
    assert missing.status == 404 and "Traceback" not in missing.body
    stale = viewer.get(f"/jobs/{job}/log/earlier?gen=0000&before=0")
    assert stale.status == 409 and "reload" in stale.body
    assert viewer.get(f"/jobs/{job}/log/earlier?gen={gen}&before=x").status == 400


def test_the_daemon_supervises_its_ui_as_an_unprivileged_user(
    world: tuple[RunningDaemon, UiProcess],
) -> None:
    daemon, _ = world
    pid_path = daemon.root / "run" / "ui.pid"
    deadline = time.monotonic() + 20

    def login_page() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", 5175, timeout=5)
        try:
            conn.request("GET", "/login")
            return conn.getresponse().status
        finally:
            conn.close()

    while True:
        try:
            assert in_netns(daemon.world.netns, login_page) == 200
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    status = Path(f"/proc/{int(pid_path.read_text())}/status").read_text()
    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
    assert uids and set(uids.groups()) == {"65534"}  # nobody, real to file-system uid
    # a crash of the UI touches no job: the daemon starts it again
    first = int(pid_path.read_text())
    os.kill(first, signal.SIGKILL)
    while int(pid_path.read_text()) == first:
        assert time.monotonic() < deadline + 20, "the UI was not started again"
        time.sleep(0.05)
    while True:
        try:
            assert in_netns(daemon.world.netns, login_page) == 200
            break
        except OSError:
            assert time.monotonic() < deadline + 40, "the new UI does not answer"
            time.sleep(0.1)


def test_a_non_loopback_listen_without_tls_is_refused(
    world: tuple[RunningDaemon, UiProcess],
) -> None:
    daemon, _ = world
    done = subprocess.run(
        [sys.executable, "-m", "joblet.daemon.main", "ui", "--config", str(daemon.config_path),
         "--listen", "0.0.0.0:5999"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("joblet: error: ui.listen 0.0.0.0:5999 is not a loopback")
    assert "Traceback" not in done.stderr


WORKFLOW = """
name: ui-dag
jobs:
  build: {command: sh, args: [-c, "sleep 1"]}
  test-a: {command: "true", requires: [{build: COMPLETED}]}
  test-b: {command: "true", requires: [{build: COMPLETED}]}
  ship: {command: "true", requires: ["test-a=COMPLETED AND test-b=COMPLETED"]}
"""


def test_a_workflows_graph_has_its_jobs_and_edges_and_changes_colour_as_they_end(
    world: tuple[RunningDaemon, UiProcess], viewer: Browser
) -> None:
    daemon, ui = world
    answer = daemon.jobs().RunWorkflow(pb.RunWorkflowRequest(yamlContent=WORKFLOW))
    page = viewer.get(f"/workflows/{answer.workflowUuid}")
    assert page.status == 200
    statuses = dict(re.findall(r'data-name="([\w-]+)" data-status="(\w+)"', page.body))
    assert set(statuses) == {"build", "test-a", "test-b", "ship"}
    assert statuses["ship"] != "completed"
    edges = set(re.findall(r'data-from="([\w-]+)" data-to="([\w-]+)"', page.body))
    assert edges == {("build", "test-a"), ("build", "test-b"), ("test-a", "ship"),
                     ("test-b", "ship")}  # fmt: skip
    assert answer.workflowUuid[:8] in viewer.get("/workflows").body
    # the live graph: re-sent whole until every node has turned completed
    events = sse_events(ui, f"/workflows/{answer.workflowUuid}/events", viewer.cookie,
                        until="never", stop_after_log=None, limit=200,
                        done=lambda e: e[0] == "timeline"
                        and e[2].count('data-status="completed"') == 4)  # fmt: skip
    graphs = [data for kind, _, data in events if kind == "dag"]
    assert graphs[0] != graphs[-1]
    assert graphs[-1].count('data-status="completed"') == 4
    # the timeline beside it: a bar per job, each dependant starting after its dependency
    timeline = events[-1][2]
    bars = dict(re.findall(r'data-name="([\w-]+)" data-status="completed">.*?'
                           r'<rect class="bar s-completed" x="([\d.]+)"', timeline))  # fmt: skip
    assert set(bars) == {"build", "test-a", "test-b", "ship"}, timeline
    assert float(bars["build"]) < float(bars["test-a"]) <= float(bars["ship"])
    assert "timeline" in page.body and 'class="timeline"' in page.body


def test_a_workflow_runs_from_an_uploaded_file_and_finished_jobs_go_in_bulk(
    world: tuple[RunningDaemon, UiProcess], admin: Browser, viewer: Browser
) -> None:
    daemon, _ = world
    boundary = "----joblet-test"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{admin.csrf}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="workflow"; filename="w.yml"\r\n'
        f"Content-Type: application/x-yaml\r\n\r\n{WORKFLOW}\r\n--{boundary}--\r\n"
    )
    kind = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    reply = admin.request("POST", "/workflows/run", headers=kind, raw=body.encode())
    assert reply.status == 303 and reply.header("Location").startswith("/workflows/")
    wf = reply.header("Location").rsplit("/", 1)[1]
    assert 'data-name="ship"' in admin.get(f"/workflows/{wf}").body
    stub = daemon.jobs()
    for job in stub.GetWorkflowJobs(pb.GetWorkflowJobsRequest(workflowUuid=wf)).jobs:
        wait_status(stub, job.jobUuid, {"COMPLETED"})
    finished = [j for j in stub.ListJobs(pb.EmptyRequest()).jobs if j.status == "COMPLETED"]
    assert finished
    assert 'id="delete-finished"' not in viewer.get("/jobs").body
    assert viewer.post("/jobs/delete-finished").status == 403
    assert admin.post("/jobs/delete-finished", csrf=False).status == 403
    foreign = {"Origin": "http://evil.example"}
    assert admin.post("/jobs/delete-finished", headers=foreign).status == 403
    assert len(stub.ListJobs(pb.EmptyRequest()).jobs) >= len(finished)  # none went
    assert admin.post("/jobs/delete-finished").status == 303
    left = {j.status for j in stub.ListJobs(pb.EmptyRequest()).jobs}
    assert "COMPLETED" not in left


def test_volumes_and_networks_are_made_and_removed_from_the_resources_page(
    admin: Browser, viewer: Browser
) -> None:
    made = {"volume-create": {"name": "ui-vol", "size": "10MB", "type": "memory"},
            "network-create": {"name": "ui-net", "cidr": "10.203.0.0/24"}}  # fmt: skip
    for action, form in made.items():
        assert viewer.post(f"/resources/{action}", form).status == 403
        reply = admin.post(f"/resources/{action}", form)
        assert (reply.status, reply.header("Location")) == (303, "/resources"), reply.body
    page = admin.get("/resources").body
    assert "ui-vol" in page and "10.203.0.0/24" in page
    assert "Remove" not in viewer.get("/resources").body
    bad = admin.post("/resources/network-create", {"name": "ui-bad", "cidr": "nonsense"})
    assert bad.status == 400 and "error-message" in bad.body
    for action in ("volume-remove", "network-remove"):
        name = "ui-vol" if action.startswith("volume") else "ui-net"
        assert admin.post(f"/resources/{action}", {"name": name}).status == 303
    page = admin.get("/resources").body
    assert "ui-vol" not in page and "ui-net" not in page


def test_the_event_stream_of_an_unknown_job_ends_and_quotes_it_as_text(admin: Browser) -> None:
    path = "/jobs/no-such-%3Cb%3Ejob/events"  # the daemon's message quotes the id
    events = sse_events(admin.ui, path, admin.cookie, until="done")
    kinds = [kind for kind, _, _ in events]
    assert kinds[-1] == "done" and "end" in kinds
    status = [data for kind, _, data in events if kind == "status"]
    assert status and "&lt;b&gt;" in status[0] and "<b>" not in status[0]


def test_the_jobs_list_is_paginated_by_the_server_with_filters_in_the_url(
    world: tuple[RunningDaemon, UiProcess], viewer: Browser
) -> None:
    daemon, _ = world
    stub = daemon.jobs()
    for n in range(55):  # scheduled an hour ahead: records that never run
        stub.RunJob(pb.RunJobRequest(command="true", name=f"paged-{n}", schedule="1h"))
    first = viewer.get("/jobs?name=paged-&status=SCHEDULED")
    rows = re.findall(r'<tr data-job="([\w-]+)"', first.body)
    found = re.search(r'id="next-page" href="/jobs\?([^"]+)"', first.body)
    assert len(rows) == 50 and found
    assert "name=paged-" in found.group(1) and "cursor=" in found.group(1)
    second = viewer.get("/jobs?" + found.group(1).replace("&amp;", "&"))
    more = re.findall(r'<tr data-job="([\w-]+)"', second.body)
    assert len(more) == 5 and not set(more) & set(rows)
    assert 'id="next-page"' not in second.body


def names_of(body: str) -> list[str]:
    return re.findall(r"<td>(paged-\d+)</td>", body)


def test_the_sorted_jobs_list_keeps_its_order_across_screens_and_in_the_url(
    world: tuple[RunningDaemon, UiProcess], viewer: Browser
) -> None:
    daemon, _ = world
    stub = daemon.jobs()
    if len(names_of(viewer.get("/jobs?name=paged-&status=SCHEDULED&sort=name").body)) < 50:
        for n in range(55):  # as above, when this test runs alone
            stub.RunJob(pb.RunJobRequest(command="true", name=f"paged-{n}", schedule="1h"))
    listed = stub.ListJobs(pb.EmptyRequest()).jobs
    names = {j.name for j in listed if j.name.startswith("paged-") and j.status == "SCHEDULED"}
    every = sorted(names, reverse=True)
    first = viewer.get("/jobs?name=paged-&status=SCHEDULED&sort=name&order=desc")
    assert names_of(first.body) == every[:50]
    found = re.search(r'id="next-page" href="/jobs\?([^"]+)"', first.body)
    assert found and "sort=name&amp;order=desc&amp;page=1" in found.group(1)
    assert "name=paged-" in found.group(1)
    second = viewer.get("/jobs?" + found.group(1).replace("&amp;", "&"))
    assert names_of(second.body) == every[50:]  # no gap, no repeat
    # the sorted column's header turns the order round, keeping the filters
    header = re.search(r'data-sort="name" href="/jobs\?([^"]+)"', first.body)
    assert header and header.group(1).replace("&amp;", "&") == (
        "status=SCHEDULED&name=paged-&sort=name&order=asc"
    )
    ascending = viewer.get("/jobs?" + header.group(1).replace("&amp;", "&"))
    assert names_of(ascending.body) == sorted(every)[:50]
    # the live rows follow the same sort
    rows = sse_events(viewer.ui, "/events/jobs?name=paged-&status=SCHEDULED&sort=name&order=desc",
                      viewer.cookie, until="rows")  # fmt: skip
    assert names_of(rows[-1][2]) == every[:50]


def test_under_tls_the_ui_serves_https_and_its_cookie_is_secure(
    world: tuple[RunningDaemon, UiProcess], tmp_path: Path
) -> None:
    daemon, _ = world
    config = yaml.safe_load(daemon.config_path.read_text())
    config["ui"] = {"enabled": True, "tls": True}
    tls_config = tmp_path / "joblet-config.yml"
    tls_config.write_text(yaml.safe_dump(config))
    ui = start_ui(daemon, config=tls_config)
    try:
        context = ssl.create_default_context(cadata=config["security"]["caCert"])
        context.check_hostname = False  # the server certificate names the node, not 127.0.0.1
        conn = http.client.HTTPSConnection("127.0.0.1", ui.port, context=context, timeout=30)
        headers = {"Origin": f"https://127.0.0.1:{ui.port}",
                   "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
        conn.request("POST", "/login", urlencode({"token": mint(daemon, "viewer")}), headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 303
        assert "; Secure" in response.getheader("Set-Cookie", "")
        with pytest.raises((http.client.HTTPException, ConnectionError)):  # no plain HTTP
            plain = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=10)
            plain.request("GET", "/login")
            plain.getresponse()
    finally:
        ui.stop()


def test_each_connection_of_the_host_page_starts_its_charts_over(viewer: Browser) -> None:
    # every kept sample is sent on each connection: a reconnect must not add them twice
    for _ in range(2):
        events = sse_events(viewer.ui, "/events/host", viewer.cookie, until="hostpoints")
        kinds = [kind for kind, _, _ in events]
        assert kinds[0] == "chartsreset" and kinds[-1] == "hostpoints"
        points = json.loads(events[-1][2])
        assert points and {"time", "cores", "memory", "network", "disk"} <= set(points[0])


def test_the_ui_loads_no_archive_codecs_it_never_uses(
    world: tuple[RunningDaemon, UiProcess], admin: Browser
) -> None:
    _, ui = world
    assert admin.get("/jobs").status == 200  # serving, past its start-up
    maps = Path(f"/proc/{ui.proc.pid}/maps").read_text()
    assert "_bz2" not in maps and "_lzma" not in maps  # idle resident memory


def test_the_serving_ui_holds_none_of_the_config_parser(
    world: tuple[RunningDaemon, UiProcess], admin: Browser
) -> None:
    _, ui = world
    assert admin.get("/jobs").status == 200
    # the same pid, exec'd after the config was read: YAML's C module is gone
    cmdline = Path(f"/proc/{ui.proc.pid}/cmdline").read_bytes().split(b"\0")
    assert b"joblet.ui.runtime" in cmdline
    assert "yaml/_yaml" not in Path(f"/proc/{ui.proc.pid}/maps").read_text()


def test_a_job_run_from_the_form_gets_its_uploaded_files(
    world: tuple[RunningDaemon, UiProcess], admin: Browser, viewer: Browser
) -> None:
    daemon, ui = world
    fields = {"csrf": admin.csrf, "command": "sh -c 'cat data.txt sub.txt; wc -c < big.bin'",
              "name": "ui-upload", "idempotency_key": "up-1"}  # fmt: skip
    # big.bin: past aiohttp's in-memory spool, so the UI writes it to disk
    # through its executor (after it dropped root)
    files = [("uploads", "data.txt", b"hello from the form\n"),
             ("uploads", "some/dir/sub.txt", b"second file\n"),
             ("uploads", "big.bin", b"b" * (3 << 20))]  # fmt: skip
    headers, body = multipart(fields, files)
    assert (
        viewer.request(
            "POST",
            "/run",
            headers={**headers, "Cookie": viewer.cookie},
            raw=multipart({**fields, "csrf": viewer.csrf}, files)[1],
        ).status
        == 403
    )
    reply = admin.request("POST", "/run", headers=headers, raw=body)
    assert reply.status == 303, reply.body
    job = reply.header("Location").rsplit("/", 1)[1]
    ended = wait_status(daemon.jobs(), job, {"COMPLETED", "FAILED"})
    events = sse_events(ui, f"/jobs/{job}/events", admin.cookie)
    text = "".join(data for kind, _, data in events if kind == "log")
    assert (ended.status, text) == ("COMPLETED", "hello from the form\nsecond file\n3145728\n")
    status = daemon.jobs().GetJobStatus(pb.GetJobStatusReq(uuid=job))
    assert sorted(status.uploads) == ["big.bin", "data.txt", "sub.txt"]


@pytest.mark.slow  # a UI of its own; the cap's fast check: tests/unit/ui/test_upload_form.py
def test_uploads_over_the_cap_and_bad_names_are_refused_with_a_message(
    world: tuple[RunningDaemon, UiProcess], tmp_path: Path
) -> None:
    daemon, _ = world
    config = yaml.safe_load(daemon.config_path.read_text())
    config["ui"] = {"maxUploadBytes": 1000}
    small = tmp_path / "joblet-config.yml"
    small.write_text(yaml.safe_dump(config))
    ui = start_ui(daemon, config=small)
    try:
        admin = Browser(ui)
        assert admin.sign_in(mint(daemon, "admin")).status == 303
        fields = {"csrf": admin.csrf, "command": "true", "name": "ui-too-big"}
        for files, status, message in (
            ([("uploads", "a.bin", b"x" * 600), ("uploads", "b.bin", b"y" * 600)], 400,
             "uploads: the files are larger than the 1000 bytes the UI accepts"),
            ([("uploads", "..", b"x")], 400, "uploads: &#39;..&#39; is not a file name"),
            ([("uploads", "a", b"1"), ("uploads", "dir/a", b"2")], 400, "two files are named"),
            ([("uploads", "huge.bin", b"z" * (2 << 20))], 413,
             "the form is larger than the UI accepts (1000 bytes of files"),
        ):  # fmt: skip
            headers, body = multipart(fields, files)
            reply = admin.request("POST", "/run", headers=headers, raw=body)
            assert (reply.status, message in reply.body) == (status, True), reply.body[:500]
        names = [j.name for j in daemon.jobs().ListJobs(pb.EmptyRequest()).jobs]
        assert "ui-too-big" not in names
    finally:
        ui.stop()


def test_a_workflow_runs_from_its_uploaded_yaml_and_files(
    world: tuple[RunningDaemon, UiProcess], admin: Browser
) -> None:
    daemon, ui = world
    workflow = "jobs:\n  show: {command: cat, args: [input.txt], uploads: {files: [input.txt]}}\n"
    files = [("workflow", "w.yml", workflow.encode()), ("files", "input.txt", b"workflow data\n")]
    headers, body = multipart({"csrf": admin.csrf}, files)
    reply = admin.request("POST", "/workflows/run", headers=headers, raw=body)
    assert reply.status == 303, reply.body
    wf = reply.header("Location").rsplit("/", 1)[1]
    stub = daemon.jobs()
    [job] = stub.GetWorkflowJobs(pb.GetWorkflowJobsRequest(workflowUuid=wf)).jobs
    ended = wait_status(stub, job.jobUuid, {"COMPLETED", "FAILED"})
    events = sse_events(ui, f"/jobs/{job.jobUuid}/events", admin.cookie)
    text = "".join(d for k, _, d in events if k == "log")
    assert (ended.status, text) == ("COMPLETED", "workflow data\n")


def test_a_runtime_installs_with_streamed_progress_and_is_tested(
    world: tuple[RunningDaemon, UiProcess], admin: Browser, viewer: Browser, tmp_path: Path
) -> None:
    src = write_runtime(tmp_path / "ui-rt", "ui-rt")
    files = [("files", p.name, p.read_bytes()) for p in sorted(src.iterdir())]
    headers, body = multipart({"csrf": viewer.csrf}, files)
    refused = viewer.request("POST", "/resources/runtime-install", headers=headers, raw=body)
    assert refused.status == 403
    headers, body = multipart({"csrf": admin.csrf}, files)
    reply = admin.request("POST", "/resources/runtime-install", headers=headers, raw=body)
    assert reply.status == 200 and reply.header("Transfer-Encoding") == "chunked"
    progress = re.findall(r'<li class="progress">([^<]+)</li>', reply.body)
    assert any("] 6/6 install" in line for line in progress), progress
    assert "building ui-rt" in reply.body  # the build log
    assert 'id="install-result">Runtime installed: ui-rt (' in reply.body
    assert 'data-runtime="ui-rt"' in admin.get("/resources").body
    tested = admin.post("/resources/runtime-test", {"name": "ui-rt"})
    assert tested.status == 200 and "Passed (exit code 0)" in tested.body
    assert "hello from v1" in tested.body
    assert viewer.post("/resources/runtime-test", {"name": "ui-rt"}).status == 403
    assert admin.post("/resources/runtime-test", {"name": "ui-rt"}, csrf=False).status == 403
    assert admin.post("/resources/runtime-test", {"name": "no-such-rt"}).status == 404
    headers, body = multipart({"csrf": admin.csrf}, [("files", "build.sh", b"true\n")])
    missing = admin.request("POST", "/resources/runtime-install", headers=headers, raw=body)
    assert missing.status == 400 and "runtime.yml among them" in missing.body
    bad = write_runtime(tmp_path / "ui-rt-bad", "ui-rt-bad", extra="echo broken; exit 3")
    files = [("files", p.name, p.read_bytes()) for p in sorted(bad.iterdir())]
    headers, body = multipart({"csrf": admin.csrf}, files)
    failed = admin.request("POST", "/resources/runtime-install", headers=headers, raw=body)
    assert failed.status == 200 and "broken" in failed.body
    assert '"result error" id="install-result">Installing runtime ui-rt-bad failed' in failed.body


# last: after every request of the tests above
def test_no_request_ended_in_a_traceback(world: tuple[RunningDaemon, UiProcess]) -> None:
    daemon, ui = world
    for log in (ui.log_path, daemon.root / "run" / "ui.log"):
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
